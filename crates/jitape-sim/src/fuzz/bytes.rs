//! Reading structured values out of fuzz input, and writing them back for seeds.
//!
//! In: any bytes. Out: numbers, flags and byte strings; past the end every read yields zero
//! or empty, so any input decodes to *something* and small mutations make small changes.
//! [`Writer`] is the inverse used by the seed generator.

/// A cursor over fuzz input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A length-prefixed (one byte) byte string.
    pub fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.u8());
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(len).min(self.data.len());
        self.pos = self.pos.saturating_add(len);
        &self.data[start..end]
    }
}

/// Encodes values the way [`Reader`] decodes them.
#[derive(Debug, Default, Clone)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.u32(v as u32).u32((v >> 32) as u32)
    }

    /// At most 255 bytes, length-prefixed.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let v = &v[..v.len().min(255)];
        self.u8(v.len() as u8);
        self.0.extend_from_slice(v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_and_reading_past_the_end_is_zero() {
        let mut w = Writer::default();
        w.u8(7).bool(true).u16(513).u32(70_000).u64(u64::MAX - 3);
        w.bytes(b"abc");
        let mut r = Reader::new(&w.0);
        assert_eq!(
            (r.u8(), r.bool(), r.u16(), r.u32(), r.u64()),
            (7, true, 513, 70_000, u64::MAX - 3)
        );
        assert_eq!(r.bytes(), b"abc");
        assert!(r.is_empty());
        assert_eq!((r.u32(), r.bytes()), (0, &b""[..]));
        let mut short = Reader::new(&[5, 1, 2]);
        assert_eq!(short.bytes(), &[1, 2]);
    }
}
