//! Reading a FLAC back with an independent decoder (claxon): every sample's MD5 and the
//! decoded frames, for resuming a file, finalizing one whose writer is gone and `inspect`.
//!
//! In: a FLAC path (finished or `.partial`). Out: [`Decoded`] (frames, samples, the running
//! MD5 and the last frame's samples) or a [`SinkError`].

use std::fs::File;
use std::path::Path;

use md5::{Digest, Md5};

use super::error::SinkError;

/// The result of decoding a file's frames with claxon.
pub(super) struct Decoded {
    /// MD5 state over every decoded sample except those of the last frame.
    pub md5: Md5,
    pub frames: u64,
    pub samples: u64,
    /// The samples of the last frame.
    pub last: Vec<i32>,
}

/// Decodes up to `max_frames` frames (all if `None`) with claxon.
pub(super) fn decode_file(path: &Path, max_frames: Option<u64>) -> Result<Decoded, SinkError> {
    decode_file_with(path, max_frames, |_| {})
}

/// The MD5 of every sample in the file, by decoding it.
pub(super) fn file_md5(path: &Path) -> Result<[u8; 16], SinkError> {
    let decoded = decode_file(path, None)?;
    let mut md5 = decoded.md5;
    md5.update(le_bytes(&decoded.last));
    Ok(md5.finalize().into())
}

/// [`decode_file`], showing every decoded frame's samples to `visit`.
pub(super) fn decode_file_with(
    path: &Path,
    max_frames: Option<u64>,
    mut visit: impl FnMut(&[i32]),
) -> Result<Decoded, SinkError> {
    let file = File::open(path).map_err(|e| SinkError::io("open", path, e))?;
    let mut reader = claxon::FlacReader::new(file).map_err(|e| claxon_error(path, "header", e))?;
    let info = reader.streaminfo();
    if info.channels != 1 || info.bits_per_sample != 16 {
        return Err(SinkError::unsupported(
            path,
            format!("{} channels, {} bits", info.channels, info.bits_per_sample),
        ));
    }
    let mut out = Decoded {
        md5: Md5::new(),
        frames: 0,
        samples: 0,
        last: Vec::new(),
    };
    let mut blocks = reader.blocks();
    let mut buffer = Vec::new();
    while max_frames.is_none_or(|m| out.frames < m) {
        let Some(block) = blocks
            .read_next_or_eof(buffer)
            .map_err(|e| claxon_error(path, "frame", e))?
        else {
            break;
        };
        out.md5.update(le_bytes(&out.last));
        out.last.clear();
        out.last.extend_from_slice(block.channel(0));
        visit(&out.last);
        out.frames += 1;
        out.samples += u64::from(block.duration());
        buffer = block.into_buffer();
    }
    Ok(out)
}

fn claxon_error(path: &Path, what: &str, e: claxon::Error) -> SinkError {
    match e {
        claxon::Error::IoError(io) => SinkError::io("read", path, io),
        claxon::Error::FormatError(r) => SinkError::corrupt(path, format!("{what}: {r}")),
        claxon::Error::Unsupported(r) => SinkError::unsupported(path, format!("{what}: {r}")),
    }
}

/// 16-bit little-endian bytes of samples (FLAC's MD5 input for 16-bit mono).
pub(super) fn le_bytes(samples: &[i32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| (s as i16).to_le_bytes())
        .collect()
}
