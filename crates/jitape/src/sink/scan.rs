//! The FLAC frame scanner: finds where the valid part of a (possibly torn) file ends.
//!
//! In: the bytes of a FLAC file as any `io::Read` (a `.partial` cut by a crash, a finalized
//! file, or garbage). Out: a [`ScanReport`] (STREAMINFO, whole frames, samples, where the last
//! valid frame ends, how many bytes follow it) or why the header is unusable.
//!
//! Written from the FLAC format specification (RFC 9639), for the streams jitape writes: mono,
//! 16 bits, fixed block size. Each frame is checked completely: sync code, header fields against
//! STREAMINFO, the frame number sequence, the header CRC-8, a walk over every subframe (constant,
//! verbatim, fixed, LPC, Rice-coded residual) to find the exact frame end, and the CRC-16. Any
//! mismatch ends the valid part; nothing here panics on hostile bytes, and memory is bounded by
//! the largest possible frame, not by the file size.

use std::io::{self, Read};

use super::format::StreamHeader;

/// Why a file cannot be scanned at all.
#[derive(Debug)]
pub enum ScanFail {
    Io(io::Error),
    /// The header is damaged or missing.
    Corrupt(String),
    /// A valid FLAC header that jitape does not write (stereo, 24 bits, variable block size).
    Unsupported(String),
}

/// What [`scan_reader`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub header: StreamHeader,
    /// Bytes of `fLaC` + metadata blocks.
    pub header_len: u64,
    /// Whole valid frames.
    pub frames: u64,
    /// Samples in those frames.
    pub samples: u64,
    /// Samples in the last valid frame (0 without frames).
    pub last_frame_samples: u32,
    /// Offset of the last valid frame (`data_end` without frames).
    pub last_frame_start: u64,
    /// Offset just after the last valid frame.
    pub data_end: u64,
    /// Total bytes read.
    pub file_len: u64,
    /// Smallest and largest full-size frame in bytes (0 without any).
    pub min_frame_bytes: u32,
    pub max_frame_bytes: u32,
    /// Why scanning stopped before the end of the file, if it did.
    pub stop: Option<String>,
}

impl ScanReport {
    /// Bytes after the last valid frame (a torn frame or garbage).
    pub fn torn_bytes(&self) -> u64 {
        self.file_len.saturating_sub(self.data_end)
    }

    /// Counts a valid frame of `len` bytes and `samples` samples at `offset`.
    fn add_frame(&mut self, offset: u64, len: usize, samples: u32) {
        if samples == u32::from(self.header.block_size) {
            let len32 = u32::try_from(len).unwrap_or(u32::MAX);
            self.min_frame_bytes = match self.min_frame_bytes {
                0 => len32,
                m => m.min(len32),
            };
            self.max_frame_bytes = self.max_frame_bytes.max(len32);
        }
        self.last_frame_start = offset;
        self.frames += 1;
        self.samples += u64::from(samples);
        self.last_frame_samples = samples;
    }

    /// The last frame holds fewer samples than the block size (only a finalized file may).
    pub fn short_last_frame(&self) -> bool {
        self.frames > 0 && self.last_frame_samples < u32::from(self.header.block_size)
    }
}

/// Reads `fLaC` and the metadata blocks; returns STREAMINFO and the header length.
pub fn read_header<R: Read>(r: &mut R) -> Result<(StreamHeader, u64), ScanFail> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic)?;
    if &magic != b"fLaC" {
        return Err(ScanFail::Corrupt("no fLaC signature".into()));
    }
    let mut len = 4u64;
    let mut info = None;
    loop {
        let mut bh = [0u8; 4];
        read_exact(r, &mut bh)?;
        let [flags, a, b, c] = bh;
        let kind = flags & 0x7F;
        let block_len = u32::from_be_bytes([0, a, b, c]);
        len += 4 + u64::from(block_len);
        if info.is_none() {
            if kind != 0 || block_len != 34 {
                return Err(ScanFail::Corrupt(
                    "first metadata block is not STREAMINFO".into(),
                ));
            }
            let mut body = [0u8; 34];
            read_exact(r, &mut body)?;
            info = Some(parse_streaminfo(&body)?);
        } else if kind == 0 || kind == 127 {
            return Err(ScanFail::Corrupt(format!(
                "invalid metadata block type {kind}"
            )));
        } else {
            skip_exact(r, u64::from(block_len))?;
        }
        if flags & 0x80 != 0 {
            break;
        }
        if len > 1 << 24 {
            return Err(ScanFail::Corrupt("metadata longer than 16 MiB".into()));
        }
    }
    match info {
        Some(h) => Ok((h, len)),
        None => Err(ScanFail::Corrupt("no STREAMINFO".into())),
    }
}

fn parse_streaminfo(b: &[u8; 34]) -> Result<StreamHeader, ScanFail> {
    let min_block = u16::from_be_bytes([b[0], b[1]]);
    let max_block = u16::from_be_bytes([b[2], b[3]]);
    let min_frame = u32::from_be_bytes([0, b[4], b[5], b[6]]);
    let max_frame = u32::from_be_bytes([0, b[7], b[8], b[9]]);
    let packed = u64::from_be_bytes([b[10], b[11], b[12], b[13], b[14], b[15], b[16], b[17]]);
    let sample_rate = (packed >> 44) as u32;
    let channels = ((packed >> 41) & 7) + 1;
    let bits = ((packed >> 36) & 31) + 1;
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&b[18..34]);
    if sample_rate == 0 {
        return Err(ScanFail::Corrupt("sample rate 0 in STREAMINFO".into()));
    }
    if max_block < 16 {
        return Err(ScanFail::Corrupt(format!(
            "block size {max_block} in STREAMINFO"
        )));
    }
    if channels != 1 || bits != 16 {
        return Err(ScanFail::Unsupported(format!(
            "{channels} channels, {bits} bits"
        )));
    }
    if min_block != max_block {
        return Err(ScanFail::Unsupported(format!(
            "variable block size {min_block}..{max_block}"
        )));
    }
    Ok(StreamHeader {
        sample_rate,
        block_size: max_block,
        min_frame_bytes: min_frame,
        max_frame_bytes: max_frame,
        total_samples: packed & 0xF_FFFF_FFFF,
        md5,
    })
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ScanFail> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ScanFail::Corrupt("header truncated".into()),
        _ => ScanFail::Io(e),
    })
}

fn skip_exact<R: Read>(r: &mut R, n: u64) -> Result<(), ScanFail> {
    let got = io::copy(&mut r.take(n), &mut io::sink()).map_err(ScanFail::Io)?;
    if got == n {
        Ok(())
    } else {
        Err(ScanFail::Corrupt("header truncated".into()))
    }
}

/// Scans a whole stream: header, then frames until the first invalid or incomplete one.
pub fn scan_reader<R: Read>(mut r: R) -> Result<ScanReport, ScanFail> {
    let (header, header_len) = read_header(&mut r)?;
    let block_size = u32::from(header.block_size);
    let max_frame = block_size as usize * 4 + 1024;
    let chunk = (max_frame * 2).max(1 << 20);
    let mut rep = ScanReport {
        header,
        header_len,
        frames: 0,
        samples: 0,
        last_frame_samples: 0,
        last_frame_start: header_len,
        data_end: header_len,
        file_len: header_len,
        min_frame_bytes: 0,
        max_frame_bytes: 0,
        stop: None,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(chunk);
    let mut pos = 0usize; // parse position in `buf`; buf[0] is at file offset `base`
    let mut base = header_len;
    let mut eof = false;
    loop {
        if !eof && buf.len() - pos < max_frame {
            buf.drain(..pos);
            base += pos as u64;
            pos = 0;
            let want = (chunk - buf.len()) as u64;
            let got = (&mut r)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(ScanFail::Io)?;
            eof = (got as u64) < want;
        }
        let rest = buf.get(pos..).unwrap_or(&[]);
        if rest.is_empty() && eof {
            break;
        }
        if rep.short_last_frame() {
            rep.stop = Some("data after a short frame".into());
            break;
        }
        let expect = Expect {
            number: rep.frames,
            block_size,
            sample_rate: header.sample_rate,
        };
        match parse_frame(rest, &expect) {
            Ok((len, samples)) => {
                rep.add_frame(base + pos as u64, len, samples);
                pos += len;
            }
            Err(Stop::Truncated) if eof => {
                rep.stop = Some(format!("torn frame {}", rep.frames));
                break;
            }
            Err(Stop::Truncated) => {
                rep.stop = Some(format!(
                    "frame {} longer than {max_frame} bytes",
                    rep.frames
                ));
                break;
            }
            Err(Stop::Invalid(why)) => {
                rep.stop = Some(format!("frame {}: {why}", rep.frames));
                break;
            }
        }
    }
    rep.data_end = base + pos as u64;
    let unread = io::copy(&mut r, &mut io::sink()).map_err(ScanFail::Io)?;
    rep.file_len = base + buf.len() as u64 + unread;
    Ok(rep)
}

/// What the next frame must look like.
struct Expect {
    number: u64,
    block_size: u32,
    sample_rate: u32,
}

/// Why a frame is not accepted.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The data ends inside the frame.
    Truncated,
    Invalid(String),
}

fn invalid<T>(why: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Invalid(why.into()))
}

/// Parses one frame at the start of `d`; returns its length in bytes and its sample count.
fn parse_frame(d: &[u8], exp: &Expect) -> Result<(usize, u32), Stop> {
    let (header_len, block) = parse_frame_header(d, exp)?;
    let mut bits = BitReader::new(d, header_len);
    skip_subframe(&mut bits, block, 16)?;
    let body_end = bits.aligned_byte_pos();
    let crc_bytes = d.get(body_end..body_end + 2).ok_or(Stop::Truncated)?;
    let stored = u16::from_be_bytes([crc_bytes[0], crc_bytes[1]]);
    if crc16(d.get(..body_end).ok_or(Stop::Truncated)?) != stored {
        return invalid("frame CRC-16 mismatch");
    }
    Ok((body_end + 2, block))
}

/// Parses and checks a frame header; returns its length (CRC-8 included) and the block size.
fn parse_frame_header(d: &[u8], exp: &Expect) -> Result<(usize, u32), Stop> {
    let byte = |i: usize| d.get(i).copied().ok_or(Stop::Truncated);
    if byte(0)? != 0xFF || (byte(1)? & 0xFE) != 0xF8 {
        return invalid("no frame sync code");
    }
    if byte(1)? == 0xF9 {
        return invalid("variable-blocksize frame");
    }
    let (bs_code, sr_code) = (byte(2)? >> 4, byte(2)? & 0x0F);
    let b3 = byte(3)?;
    if b3 >> 4 != 0 {
        return invalid("frame is not mono");
    }
    if !matches!((b3 >> 1) & 7, 0 | 4) || b3 & 1 != 0 {
        return invalid("frame is not 16-bit");
    }
    let mut i = 4;
    let number = read_utf8_number(d, &mut i)?;
    if number != exp.number {
        return invalid(format!("frame number {number}, expected {}", exp.number));
    }
    let block = match bs_code {
        0 => return invalid("reserved block size code"),
        1 => 192,
        2..=5 => 576 << (bs_code - 2),
        6 => u32::from(byte(i)?) + 1,
        7 => u32::from(u16::from_be_bytes([byte(i)?, byte(i + 1)?])) + 1,
        _ => 256 << (bs_code - 8),
    };
    i += match bs_code {
        6 => 1,
        7 => 2,
        _ => 0,
    };
    let rate = match sr_code {
        0 => exp.sample_rate,
        1..=11 => RATES.get(usize::from(sr_code)).copied().unwrap_or(0),
        12 => u32::from(byte(i)?) * 1000,
        13 => u32::from(u16::from_be_bytes([byte(i)?, byte(i + 1)?])),
        14 => u32::from(u16::from_be_bytes([byte(i)?, byte(i + 1)?])) * 10,
        _ => return invalid("invalid sample rate code"),
    };
    i += match sr_code {
        12 => 1,
        13 | 14 => 2,
        _ => 0,
    };
    if rate != exp.sample_rate {
        return invalid(format!(
            "sample rate {rate}, stream has {}",
            exp.sample_rate
        ));
    }
    if block > exp.block_size {
        return invalid(format!(
            "block of {block} samples, stream has {}",
            exp.block_size
        ));
    }
    let crc = byte(i)?;
    if crc8(d.get(..i).ok_or(Stop::Truncated)?) != crc {
        return invalid("frame header CRC-8 mismatch");
    }
    Ok((i + 1, block))
}

/// Sample rates of the frame header codes 1..=11 (index 0 unused).
const RATES: [u32; 12] = [
    0, 88_200, 176_400, 192_000, 8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000,
];

/// The UTF-8-like coded frame number (up to 6 bytes, 31 bits).
fn read_utf8_number(d: &[u8], i: &mut usize) -> Result<u64, Stop> {
    let first = *d.get(*i).ok_or(Stop::Truncated)?;
    *i += 1;
    let ones = first.leading_ones();
    let (mut value, extra) = match ones {
        0 => (u64::from(first), 0),
        2..=6 => (u64::from(first & (0x7F >> ones)), ones - 1),
        _ => return invalid("invalid frame number coding"),
    };
    for _ in 0..extra {
        let c = *d.get(*i).ok_or(Stop::Truncated)?;
        *i += 1;
        if c & 0xC0 != 0x80 {
            return invalid("invalid frame number coding");
        }
        value = (value << 6) | u64::from(c & 0x3F);
    }
    Ok(value)
}

/// Walks one subframe without decoding samples.
fn skip_subframe(r: &mut BitReader, block: u32, bps: u32) -> Result<(), Stop> {
    if r.bits(1)? != 0 {
        return invalid("subframe padding bit set");
    }
    let kind = r.bits(6)?;
    let wasted = if r.bits(1)? == 1 { r.unary()? + 1 } else { 0 };
    if wasted >= bps {
        return invalid("wasted bits exceed sample size");
    }
    let bps = u64::from(bps - wasted);
    let block64 = u64::from(block);
    match kind {
        0 => r.skip(bps),
        1 => r.skip(block64 * bps),
        8..=12 => {
            let order = kind - 8;
            if order > block {
                return invalid("predictor order above block size");
            }
            r.skip(u64::from(order) * bps)?;
            skip_residual(r, block, order)
        }
        32..=63 => {
            let order = kind - 31;
            if order > block {
                return invalid("predictor order above block size");
            }
            r.skip(u64::from(order) * bps)?;
            let precision = r.bits(4)?;
            if precision == 15 {
                return invalid("invalid LPC coefficient precision");
            }
            r.skip(5)?; // shift
            r.skip(u64::from(order) * u64::from(precision + 1))?;
            skip_residual(r, block, order)
        }
        _ => invalid(format!("reserved subframe type {kind}")),
    }
}

/// Walks a Rice-coded residual of `block - order` samples.
fn skip_residual(r: &mut BitReader, block: u32, order: u32) -> Result<(), Stop> {
    let param_bits = match r.bits(2)? {
        0 => 4,
        1 => 5,
        _ => return invalid("reserved residual coding method"),
    };
    let escape = (1u32 << param_bits) - 1;
    let partition_order = r.bits(4)?;
    let partitions = 1u32 << partition_order;
    if !block.is_multiple_of(partitions) || block / partitions < order {
        return invalid("partition order does not fit the block");
    }
    let per_partition = block / partitions;
    for p in 0..partitions {
        let n = if p == 0 {
            per_partition - order
        } else {
            per_partition
        };
        let param = r.bits(param_bits)?;
        if param == escape {
            let raw = r.bits(5)?;
            r.skip(u64::from(n) * u64::from(raw))?;
        } else {
            for _ in 0..n {
                r.unary()?;
                r.skip(u64::from(param))?;
            }
        }
    }
    Ok(())
}

/// MSB-first bit reader over a byte slice; running off the end is [`Stop::Truncated`].
struct BitReader<'a> {
    data: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], byte_pos: usize) -> Self {
        BitReader {
            data,
            pos: byte_pos as u64 * 8,
        }
    }

    fn total_bits(&self) -> u64 {
        self.data.len() as u64 * 8
    }

    /// Reads `n` (≤ 32) bits.
    fn bits(&mut self, n: u32) -> Result<u32, Stop> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.byte_at(self.pos)?;
            let bit = (byte >> (7 - (self.pos & 7))) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        let end = self.pos.saturating_add(n);
        if end > self.total_bits() {
            return Err(Stop::Truncated);
        }
        self.pos = end;
        Ok(())
    }

    /// Counts zero bits up to and including the next one bit; returns the zero count.
    fn unary(&mut self) -> Result<u32, Stop> {
        let start = self.pos;
        loop {
            let offset = (self.pos & 7) as u32;
            let rest = self.byte_at(self.pos)? << offset;
            if rest != 0 {
                self.pos += u64::from(rest.leading_zeros()) + 1;
                return u32::try_from(self.pos - start - 1)
                    .or_else(|_| invalid("unary value too long"));
            }
            self.pos += u64::from(8 - offset);
        }
    }

    fn byte_at(&self, bit_pos: u64) -> Result<u8, Stop> {
        usize::try_from(bit_pos / 8)
            .ok()
            .and_then(|i| self.data.get(i).copied())
            .ok_or(Stop::Truncated)
    }

    fn aligned_byte_pos(&self) -> usize {
        usize::try_from(self.pos.div_ceil(8)).unwrap_or(usize::MAX)
    }
}

/// CRC-8 of frame headers: polynomial x^8 + x^2 + x + 1, initial value 0.
fn crc8(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |crc, &b| CRC8_TABLE[usize::from(crc ^ b)])
}

/// CRC-16 of frames: polynomial x^16 + x^15 + x^2 + 1, initial value 0.
fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

const CRC8_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

const CRC16_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x8005
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests;
