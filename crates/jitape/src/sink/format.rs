//! The FLAC stream format as jitape writes it: STREAMINFO bytes and one frame at a time.
//!
//! In: the stream parameters (sample rate, block size) and blocks of samples. Out: the 42-byte
//! file header (`fLaC` + STREAMINFO), FLAC frames encoded by `flacenc::encode_fixed_size_frame`
//! with the MD5 of their samples fed along, and the naming rules of `.partial` files. Pure:
//! nothing here touches the disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flacenc::bitsink::ByteSink;
use flacenc::component::BitRepr;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Fill, FrameBuf};
use md5::{Digest, Md5};

use super::error::SinkError;

/// Samples per FLAC frame unless configured otherwise (85 ms at 48 kHz).
pub const DEFAULT_BLOCK_SIZE: u16 = 4096;
/// Appended to a file name while the file is being written.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// `fLaC` + metadata block header + the 34-byte STREAMINFO.
pub const HEADER_LEN: u64 = 42;
/// Offset of the STREAMINFO body in the file.
pub(super) const STREAMINFO_OFFSET: u64 = 8;

/// The STREAMINFO fields jitape writes (mono, 16 bits per sample, fixed block size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    pub sample_rate: u32,
    pub block_size: u16,
    /// Smallest and largest frame in bytes; 0 = unknown (while recording).
    pub min_frame_bytes: u32,
    pub max_frame_bytes: u32,
    /// 0 = unknown (while recording).
    pub total_samples: u64,
    /// All zero = unknown (while recording).
    pub md5: [u8; 16],
}

impl StreamHeader {
    /// The header of a file that is still being written.
    pub fn partial(sample_rate: u32, block_size: u16) -> Self {
        StreamHeader {
            sample_rate,
            block_size,
            min_frame_bytes: 0,
            max_frame_bytes: 0,
            total_samples: 0,
            md5: [0; 16],
        }
    }

    /// `fLaC` + the (last and only) STREAMINFO metadata block.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[..4].copy_from_slice(b"fLaC");
        out[4..8].copy_from_slice(&[0x80, 0, 0, 34]); // last block, type 0, length 34
        out[8..10].copy_from_slice(&self.block_size.to_be_bytes());
        out[10..12].copy_from_slice(&self.block_size.to_be_bytes());
        out[12..15].copy_from_slice(&self.min_frame_bytes.to_be_bytes()[1..]);
        out[15..18].copy_from_slice(&self.max_frame_bytes.to_be_bytes()[1..]);
        // 20 bits rate, 3 bits channels-1 (0), 5 bits bps-1 (15), 36 bits total samples.
        let packed = (u64::from(self.sample_rate & 0xF_FFFF) << 44)
            | (15u64 << 36)
            | (self.total_samples & 0xF_FFFF_FFFF);
        out[18..26].copy_from_slice(&packed.to_be_bytes());
        out[26..42].copy_from_slice(&self.md5);
        out
    }
}

/// `samples` at `sample_rate` as a duration (nanosecond precision).
pub fn samples_to_duration(samples: u64, sample_rate: u32) -> Duration {
    let rate = u128::from(sample_rate.max(1));
    let nanos = u128::from(samples) * 1_000_000_000 / rate;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// `<final>.partial`.
pub fn partial_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_os_string();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// The final name of a `.partial` path, or `None` if it does not end in `.partial`.
pub fn final_path_of(partial: &Path) -> Option<PathBuf> {
    let s = partial.to_str()?;
    let stem = s.strip_suffix(PARTIAL_SUFFIX)?;
    (!stem.is_empty()).then(|| PathBuf::from(stem))
}

/// Encodes one block at a time into FLAC frame bytes.
pub(super) struct FrameEncoder {
    config: Verified<flacenc::config::Encoder>,
    info: flacenc::component::StreamInfo,
    framebuf: FrameBuf,
    sink: ByteSink,
    le: Vec<u8>,
}

impl FrameEncoder {
    pub(super) fn new(sample_rate: u32, block_size: u16) -> Result<Self, String> {
        let size = usize::from(block_size);
        let mut config = flacenc::config::Encoder::default();
        // Fixed predictors only: flacenc's LPC search (Tukey window, autocorrelation with
        // `f32::mul_add`, a libm call without FMA in the target) cost ~75 % of encoding;
        // without it encoding is ~4x faster for ~4 % larger speech (README, Performance).
        config.subframe_coding.use_lpc = false;
        let config = config
            .into_verified()
            .map_err(|(_, e)| format!("flacenc config: {e}"))?;
        let info = flacenc::component::StreamInfo::new(sample_rate as usize, 1, 16)
            .map_err(|e| format!("sample rate {sample_rate}: {e}"))?;
        let framebuf =
            FrameBuf::with_size(1, size).map_err(|e| format!("block size {block_size}: {e}"))?;
        Ok(FrameEncoder {
            config,
            info,
            framebuf,
            sink: ByteSink::with_capacity(size * 16 + 1024),
            le: Vec::with_capacity(size * 2),
        })
    }

    /// Encodes `samples` (1..=block size of them) as frame `number`, appends the frame to
    /// `out`, feeds the samples to `md5` and returns the frame's length in bytes.
    pub(super) fn encode(
        &mut self,
        samples: &[i32],
        number: u64,
        out: &mut Vec<u8>,
        md5: &mut Md5,
    ) -> Result<usize, String> {
        let number = usize::try_from(number).map_err(|_| "frame number overflow".to_string())?;
        self.framebuf
            .fill_interleaved(samples)
            .map_err(|e| format!("fill: {e}"))?;
        let frame =
            flacenc::encode_fixed_size_frame(&self.config, &self.framebuf, number, &self.info)
                .map_err(|e| format!("encode frame {number}: {e}"))?;
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| format!("serialize frame {number}: {e}"))?;
        out.extend_from_slice(self.sink.as_slice());
        self.le.clear();
        for &s in samples {
            // Samples come from i16, so the low two bytes are the whole value.
            self.le.extend_from_slice(&s.to_le_bytes()[..2]);
        }
        md5.update(&self.le);
        Ok(self.sink.as_slice().len())
    }
}

/// Rejects formats the writer cannot produce.
pub(super) fn check_format(
    path: &Path,
    sample_rate: u32,
    block_size: u16,
) -> Result<(), SinkError> {
    if !(1..=655_350).contains(&sample_rate) {
        return Err(SinkError::unsupported(
            path,
            format!("sample rate {sample_rate}"),
        ));
    }
    if block_size < 16 {
        return Err(SinkError::unsupported(
            path,
            format!("block size {block_size}"),
        ));
    }
    Ok(())
}
