//! The incremental, crash-safe FLAC writer: one mono 16-bit stream per file.
//!
//! In: PCM samples (`i16`, mono, at the recording's sample rate) in any chunk size. Out: a
//! `<name>.flac.partial` that grows by whole FLAC frames (fixed block size, encoded one frame at
//! a time with `flacenc::encode_fixed_size_frame`) and, at [`FlacWriter::finalize`], a `<name>.flac`
//! with a correct STREAMINFO (total samples, MD5, block and frame sizes), fsynced and renamed.
//!
//! File layout: `fLaC` + one STREAMINFO block (42 bytes in all; total samples and MD5 are zero
//! while recording) + frames. Only full blocks are written before finalize, so a `.partial` is
//! always "header + N full frames + maybe a torn tail"; `repair` cuts the tail and continues.
//!
//! Write failures (disk full, EIO, read-only) never leave a torn frame: bytes are written with
//! positioned writes, the file is cut back to the last frame that got in whole, and the frames
//! not yet written stay in memory (up to [`FlacSettings::max_pending_bytes`]) and are retried by
//! the next `write`/`flush`. Beyond that bound, incoming audio is replaced by digital silence
//! (which costs a few bytes per frame) so the timeline keeps its length; those samples are
//! counted in [`FlacWriter::samples_lost`] and their ranges in [`FlacWriter::lost_ranges`].

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::error::SinkError;
pub use super::format::{
    DEFAULT_BLOCK_SIZE, HEADER_LEN, PARTIAL_SUFFIX, StreamHeader, final_path_of, partial_path,
    samples_to_duration,
};
use super::format::{FrameEncoder, STREAMINFO_OFFSET, check_format};

/// Tuning of a [`FlacWriter`].
#[derive(Debug, Clone)]
pub struct FlacSettings {
    /// Samples per frame (16..=65535).
    pub block_size: u16,
    /// Encoded bytes kept in memory while the disk refuses them; beyond it audio becomes silence.
    pub max_pending_bytes: usize,
    /// `write` hands encoded frames to the OS once this many bytes are waiting.
    pub flush_bytes: usize,
}

impl Default for FlacSettings {
    fn default() -> Self {
        FlacSettings {
            block_size: DEFAULT_BLOCK_SIZE,
            max_pending_bytes: 8 << 20,
            flush_bytes: 64 << 10,
        }
    }
}

/// What a finalized file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// The final `.flac` path.
    pub path: PathBuf,
    pub sample_rate: u32,
    /// Samples in the file (equals STREAMINFO).
    pub total_samples: u64,
    /// File size in bytes.
    pub bytes: u64,
    pub md5: [u8; 16],
    /// Samples of the timeline that could not be stored (silence instead, or cut at finalize).
    pub samples_lost: u64,
    /// Where on the timeline those samples were.
    pub lost_ranges: Vec<Range<u64>>,
}

impl Finalized {
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.total_samples, self.sample_rate)
    }
}

/// Where a resumed writer picks up (built by `repair`).
pub(super) struct ResumeState {
    pub file: File,
    pub partial: PathBuf,
    pub final_path: PathBuf,
    pub header: StreamHeader,
    pub md5: Md5,
    pub next_frame: u64,
    pub committed_len: u64,
    pub min_frame_bytes: u32,
    pub max_frame_bytes: u32,
    /// Samples of a short last frame that was cut off and must be encoded again.
    pub rebuffer: Vec<i32>,
}

/// An open recording file. See the module doc for the guarantees.
pub struct FlacWriter {
    partial: PathBuf,
    final_path: PathBuf,
    file: File,
    header: StreamHeader,
    opts: FlacSettings,
    encoder: FrameEncoder,
    /// Samples of the block being filled (< block size).
    block: Vec<i32>,
    md5: Md5,
    next_frame: u64,
    /// Samples encoded into frames (committed or pending).
    samples_encoded: u64,
    /// Encoded frames not yet in the file, and their (bytes, samples).
    pending: Vec<u8>,
    pending_frames: VecDeque<(usize, u32)>,
    /// File length covered by whole frames (the file is never longer once a write settles).
    committed_len: u64,
    committed_samples: u64,
    min_frame_bytes: u32,
    max_frame_bytes: u32,
    lost_samples: u64,
    lost_ranges: Vec<Range<u64>>,
    /// The last truncation failed: the file may be longer than `committed_len`.
    tail_dirty: bool,
    /// The last attempt to write failed.
    failing: bool,
    /// `pending` length at which `write` tries the disk again.
    next_attempt: usize,
}

impl FlacWriter {
    /// Creates `<final_path>.partial` (which must not exist) with default options.
    pub fn create(final_path: &Path, sample_rate: u32) -> Result<FlacWriter, SinkError> {
        Self::create_with(final_path, sample_rate, FlacSettings::default())
    }

    /// Creates `<final_path>.partial` (which must not exist), writes and fsyncs the header.
    pub fn create_with(
        final_path: &Path,
        sample_rate: u32,
        opts: FlacSettings,
    ) -> Result<FlacWriter, SinkError> {
        let partial = partial_path(final_path);
        check_format(&partial, sample_rate, opts.block_size)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| SinkError::io("create", &partial, e))?;
        let header = StreamHeader::partial(sample_rate, opts.block_size);
        let setup = file
            .write_all_at(&header.to_bytes(), 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| SinkError::io("write header", &partial, e));
        if let Err(e) = setup.and_then(|()| sync_parent(&partial)) {
            drop(file);
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        tracing::debug!(path = %partial.display(), sample_rate, "flac writer created");
        let state = ResumeState {
            file,
            partial: partial.clone(),
            final_path: final_path.to_path_buf(),
            header,
            md5: Md5::new(),
            next_frame: 0,
            committed_len: HEADER_LEN,
            min_frame_bytes: 0,
            max_frame_bytes: 0,
            rebuffer: Vec::new(),
        };
        Self::from_state(state, opts).inspect_err(|_| {
            let _ = fs::remove_file(&partial);
        })
    }

    /// Builds a writer around an open file positioned after `committed_len` whole frames.
    pub(super) fn from_state(s: ResumeState, opts: FlacSettings) -> Result<Self, SinkError> {
        let block_size = s.header.block_size;
        let encoder = FrameEncoder::new(s.header.sample_rate, block_size)
            .map_err(|r| SinkError::unsupported(&s.partial, r))?;
        let samples_so_far = s.next_frame * u64::from(block_size);
        let mut block = Vec::with_capacity(usize::from(block_size));
        if s.rebuffer.len() >= usize::from(block_size) {
            return Err(SinkError::bug(&s.partial, "rebuffered block is not short"));
        }
        block.extend_from_slice(&s.rebuffer);
        Ok(FlacWriter {
            next_attempt: opts.flush_bytes,
            partial: s.partial,
            final_path: s.final_path,
            file: s.file,
            header: StreamHeader::partial(s.header.sample_rate, block_size),
            opts,
            encoder,
            block,
            md5: s.md5,
            next_frame: s.next_frame,
            samples_encoded: samples_so_far,
            pending: Vec::new(),
            pending_frames: VecDeque::new(),
            committed_len: s.committed_len,
            committed_samples: samples_so_far,
            min_frame_bytes: s.min_frame_bytes,
            max_frame_bytes: s.max_frame_bytes,
            lost_samples: 0,
            lost_ranges: Vec::new(),
            tail_dirty: false,
            failing: false,
        })
    }

    /// The `.partial` file being written.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// The name the file gets at finalize.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    pub fn sample_rate(&self) -> u32 {
        self.header.sample_rate
    }

    /// Samples accepted on the timeline so far (in the file, pending or buffered).
    pub fn samples_written(&self) -> u64 {
        self.samples_encoded + self.block.len() as u64
    }

    /// Samples replaced by silence because the disk refused them for too long.
    pub fn samples_lost(&self) -> u64 {
        self.lost_samples
    }

    /// The timeline ranges (in samples) that were replaced by silence.
    pub fn lost_ranges(&self) -> &[Range<u64>] {
        &self.lost_ranges
    }

    /// Encoded bytes waiting for the disk.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of whole frames in the file (header included).
    pub fn file_bytes(&self) -> u64 {
        self.committed_len
    }

    /// True while the disk refuses writes (frames are waiting in memory).
    pub fn is_degraded(&self) -> bool {
        self.failing || self.tail_dirty
    }

    /// Appends samples. An `Err` is a write failure of earlier frames: the samples given here are
    /// still accepted (kept in memory or, beyond the memory bound, replaced by silence) and the
    /// file stays valid; call `flush` later to retry.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), SinkError> {
        let block_size = usize::from(self.header.block_size);
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (block_size - self.block.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            if self.pending.len() >= self.opts.max_pending_bytes {
                self.note_lost(take as u64);
                self.block.resize(self.block.len() + take, 0);
            } else {
                self.block.extend(now.iter().map(|&s| i32::from(s)));
            }
            rest = later;
            if self.block.len() == block_size {
                self.encode_block()?;
            }
        }
        if self.pending.len() >= self.next_attempt {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Appends `samples` of digital silence (a gap: jitape's downtime, a lost session). Errors
    /// as for [`FlacWriter::write`]; the silence is accepted either way.
    pub fn write_silence(&mut self, samples: u64) -> Result<(), SinkError> {
        const ZEROS: [i16; 4096] = [0; 4096];
        let mut left = samples;
        let mut result = Ok(());
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            if let Err(e) = self.write(&ZEROS[..n]) {
                result = Err(e);
            }
            left -= n as u64;
        }
        result
    }

    /// Hands every complete frame to the OS (the partial block stays buffered).
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.write_pending()
    }

    /// `flush`, then fsync the data: after this a crash loses nothing but the partial block.
    pub fn sync(&mut self) -> Result<(), SinkError> {
        self.write_pending()?;
        self.file
            .sync_data()
            .map_err(|e| SinkError::io("fsync", &self.partial, e))
    }

    /// Encodes the last (short) block, writes what the disk takes, fixes STREAMINFO, fsyncs,
    /// renames `.partial` to the final name and fsyncs the directory. Frames the disk still
    /// refuses are dropped (counted in `samples_lost`); the file stays valid either way.
    /// Drops the writer without writing anything more: what is not on disk is lost. For a
    /// recording this instance may no longer write (another instance owns it now).
    pub fn discard(mut self) {
        self.pending.clear();
        self.pending_frames.clear();
    }

    pub fn finalize(mut self) -> Result<Finalized, SinkError> {
        if !self.block.is_empty() {
            self.encode_block()?;
        }
        if let Err(e) = self.write_pending() {
            tracing::warn!(error = %e, "finalize: dropping frames the disk refused");
            self.drop_pending()?;
        }
        let md5 = if self.lost_at_finalize() {
            super::decode::file_md5(&self.partial)?
        } else {
            self.md5.clone().finalize().into()
        };
        let header = StreamHeader {
            min_frame_bytes: self.min_frame_bytes,
            max_frame_bytes: self.max_frame_bytes,
            total_samples: self.committed_samples,
            md5,
            ..self.header
        };
        let p = &self.partial;
        self.file
            .write_all_at(
                &header.to_bytes()[STREAMINFO_OFFSET as usize..],
                STREAMINFO_OFFSET,
            )
            .map_err(|e| SinkError::io("write streaminfo", p, e))?;
        self.file
            .sync_all()
            .map_err(|e| SinkError::io("fsync", p, e))?;
        fs::rename(p, &self.final_path).map_err(|e| SinkError::io("rename", p, e))?;
        sync_parent(&self.final_path)?;
        tracing::debug!(path = %self.final_path.display(), samples = self.committed_samples,
            lost = self.lost_samples, "flac finalized");
        Ok(Finalized {
            path: std::mem::take(&mut self.final_path),
            sample_rate: header.sample_rate,
            total_samples: header.total_samples,
            bytes: self.committed_len,
            md5,
            samples_lost: self.lost_samples,
            lost_ranges: std::mem::take(&mut self.lost_ranges),
        })
    }

    fn encode_block(&mut self) -> Result<(), SinkError> {
        let len = self
            .encoder
            .encode(
                &self.block,
                self.next_frame,
                &mut self.pending,
                &mut self.md5,
            )
            .map_err(|r| SinkError::bug(&self.partial, r))?;
        let samples = self.block.len() as u32;
        self.pending_frames.push_back((len, samples));
        self.next_frame += 1;
        self.samples_encoded += u64::from(samples);
        self.block.clear();
        Ok(())
    }

    /// Writes pending frames at the end of the whole frames already in the file. On failure the
    /// file is cut back to the last frame that got in whole and the rest stays pending.
    fn write_pending(&mut self) -> Result<(), SinkError> {
        if self.tail_dirty {
            self.cut_tail()?;
        }
        let mut written = 0usize;
        let mut failure = None;
        while written < self.pending.len() {
            let at = self.committed_len + written as u64;
            match self.file.write_at(&self.pending[written..], at) {
                Ok(0) => {
                    failure = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let whole = self.commit_frames(written);
        match failure {
            None => {
                self.failing = false;
                self.next_attempt = self.opts.flush_bytes;
                Ok(())
            }
            Some(e) => {
                if written > whole {
                    self.tail_dirty = true;
                    // Best effort now; retried before the next write and at finalize.
                    let _ = self.cut_tail();
                }
                self.failing = true;
                self.next_attempt = self.pending.len() + self.opts.flush_bytes;
                tracing::debug!(path = %self.partial.display(), error = %e,
                    pending = self.pending.len(), "flac write failed");
                Err(SinkError::io("write", &self.partial, e))
            }
        }
    }

    /// Moves the whole frames among the first `written` pending bytes into the file's count.
    fn commit_frames(&mut self, written: usize) -> usize {
        let mut whole = 0usize;
        while let Some(&(len, samples)) = self.pending_frames.front() {
            if whole + len > written {
                break;
            }
            whole += len;
            let len32 = u32::try_from(len).unwrap_or(u32::MAX);
            self.min_frame_bytes = match self.min_frame_bytes {
                0 => len32,
                m => m.min(len32),
            };
            self.max_frame_bytes = self.max_frame_bytes.max(len32);
            self.committed_samples += u64::from(samples);
            self.pending_frames.pop_front();
        }
        self.pending.drain(..whole);
        self.committed_len += whole as u64;
        whole
    }

    fn cut_tail(&mut self) -> Result<(), SinkError> {
        self.file
            .set_len(self.committed_len)
            .map_err(|e| SinkError::io("truncate", &self.partial, e))?;
        self.tail_dirty = false;
        Ok(())
    }

    /// At finalize: forget frames the disk refused; their samples count as lost.
    fn drop_pending(&mut self) -> Result<(), SinkError> {
        let dropped: u64 = self.pending_frames.iter().map(|&(_, s)| u64::from(s)).sum();
        if dropped > 0 {
            let start = self.committed_samples;
            self.lost_samples += dropped;
            push_range(&mut self.lost_ranges, start..start + dropped);
        }
        self.pending.clear();
        self.pending_frames.clear();
        self.cut_tail()
    }

    fn lost_at_finalize(&self) -> bool {
        self.committed_samples != self.samples_encoded
    }

    fn note_lost(&mut self, n: u64) {
        let start = self.samples_written();
        self.lost_samples += n;
        push_range(&mut self.lost_ranges, start..start + n);
    }
}

impl std::fmt::Debug for FlacWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlacWriter")
            .field("path", &self.partial)
            .field("sample_rate", &self.header.sample_rate)
            .field("samples_written", &self.samples_written())
            .field("file_bytes", &self.committed_len)
            .field("pending_bytes", &self.pending.len())
            .field("samples_lost", &self.lost_samples)
            .finish_non_exhaustive()
    }
}

impl Drop for FlacWriter {
    /// Best effort: whole frames reach the OS even if the owner forgot to finalize (a panic
    /// in the conference task); the file stays a repairable `.partial`.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.write_pending();
        }
    }
}

/// Appends `r` to `ranges`, merging with the last range when they touch.
fn push_range(ranges: &mut Vec<Range<u64>>, r: Range<u64>) {
    match ranges.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => ranges.push(r),
    }
}

/// fsyncs the directory holding `path`, so a create or rename survives a crash.
pub(super) fn sync_parent(path: &Path) -> Result<(), SinkError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests;
