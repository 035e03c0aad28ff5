//! Repair and resume of `.partial` FLAC files left by a crash, a `kill -9` or a power cut.
//!
//! In: the path of a `<name>.flac.partial`. Out: either a [`FlacWriter`] that continues the same
//! file (torn tail cut, MD5 state rebuilt by decoding the kept frames with claxon, frame numbers
//! continuing) plus a [`ResumeReport`], or, with [`finalize_partial`], a finalized `<name>.flac`.
//!
//! The valid part is found by [`super::scan`]; claxon then decodes exactly those frames, so a
//! file is only continued when two independent readers agree on it. A short last frame (a
//! finalize that crashed before its rename) is cut too and its samples are encoded again, so
//! the stream never holds a short frame in the middle. A damaged header is an error: the caller
//! sets such a file aside and starts a new one.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::Path;

use md5::Digest;

use super::decode::{decode_file, le_bytes};
use super::error::SinkError;
use super::flac::{Finalized, FlacSettings, FlacWriter, ResumeState};
use super::format::{STREAMINFO_OFFSET, StreamHeader, check_format, final_path_of};
use super::scan::{ScanFail, ScanReport, scan_reader};

/// What [`FlacWriter::resume`] did to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeReport {
    /// Whole frames kept in the file.
    pub frames_kept: u64,
    /// Samples on the timeline after the repair (kept frames + re-buffered samples).
    pub samples_kept: u64,
    /// Samples of a short last frame that were taken out of the file to be encoded again.
    pub rebuffered_samples: u32,
    /// Bytes cut from the end (torn frame, garbage, a short last frame).
    pub bytes_cut: u64,
    /// STREAMINFO already held a total (a finalize crashed before its rename).
    pub header_was_final: bool,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop: Option<String>,
}

/// Scans `path` (a `.partial` or a finalized file) without changing it.
pub fn scan(path: &Path) -> Result<ScanReport, SinkError> {
    let file = File::open(path).map_err(|e| SinkError::io("open", path, e))?;
    scan_reader(BufReader::new(file)).map_err(|f| scan_error(path, f))
}

pub(super) fn scan_error(path: &Path, f: ScanFail) -> SinkError {
    match f {
        ScanFail::Io(e) => SinkError::io("read", path, e),
        ScanFail::Corrupt(r) => SinkError::corrupt(path, r),
        ScanFail::Unsupported(r) => SinkError::unsupported(path, r),
    }
}

/// Repairs a `.partial` and finalizes it (for a recording that is over).
pub fn finalize_partial(partial: &Path) -> Result<Finalized, SinkError> {
    let (writer, report) = reopen(partial, None, FlacSettings::default())?;
    tracing::info!(path = %partial.display(), samples = report.samples_kept,
        bytes_cut = report.bytes_cut, "finalizing an interrupted recording");
    writer.finalize()
}

impl FlacWriter {
    /// Repairs `partial` and opens it for appending; `sample_rate` must match the file.
    pub fn resume(
        partial: &Path,
        sample_rate: u32,
    ) -> Result<(FlacWriter, ResumeReport), SinkError> {
        Self::resume_with(partial, sample_rate, FlacSettings::default())
    }

    /// [`FlacWriter::resume`] with options; the block size always comes from the file.
    pub fn resume_with(
        partial: &Path,
        sample_rate: u32,
        opts: FlacSettings,
    ) -> Result<(FlacWriter, ResumeReport), SinkError> {
        let (writer, report) = reopen(partial, Some(sample_rate), opts)?;
        tracing::info!(path = %partial.display(), samples = report.samples_kept,
            bytes_cut = report.bytes_cut, "resuming an interrupted recording");
        Ok((writer, report))
    }
}

fn reopen(
    partial: &Path,
    sample_rate: Option<u32>,
    mut opts: FlacSettings,
) -> Result<(FlacWriter, ResumeReport), SinkError> {
    let final_path = final_path_of(partial)
        .ok_or_else(|| SinkError::unsupported(partial, "not a .partial file name"))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(partial)
        .map_err(|e| SinkError::io("open", partial, e))?;
    let rep = scan_reader(BufReader::new(&file)).map_err(|f| scan_error(partial, f))?;
    let header = rep.header;
    if let Some(rate) = sample_rate.filter(|&r| r != header.sample_rate) {
        return Err(SinkError::unsupported(
            partial,
            format!(
                "file has sample rate {}, asked for {rate}",
                header.sample_rate
            ),
        ));
    }
    check_format(partial, header.sample_rate, header.block_size)?;
    opts.block_size = header.block_size;

    let decoded = decode_file(partial, Some(rep.frames))?;
    if decoded.samples != rep.samples || decoded.frames != rep.frames {
        return Err(SinkError::corrupt(
            partial,
            format!(
                "scanner found {} frames/{} samples, decoder {}/{}",
                rep.frames, rep.samples, decoded.frames, decoded.samples
            ),
        ));
    }
    let mut md5 = decoded.md5;
    let (keep_end, frames, rebuffer) = if rep.short_last_frame() {
        (rep.last_frame_start, rep.frames - 1, decoded.last)
    } else {
        md5.update(le_bytes(&decoded.last));
        (rep.data_end, rep.frames, Vec::new())
    };
    cut_and_reset_header(&file, partial, keep_end, &header)?;

    let report = ResumeReport {
        frames_kept: frames,
        samples_kept: frames * u64::from(header.block_size) + rebuffer.len() as u64,
        rebuffered_samples: rebuffer.len() as u32,
        bytes_cut: rep.file_len - keep_end,
        header_was_final: header.total_samples != 0,
        stop: rep.stop.clone(),
    };
    let state = ResumeState {
        file,
        partial: partial.to_path_buf(),
        final_path,
        header,
        md5,
        next_frame: frames,
        committed_len: keep_end,
        min_frame_bytes: rep.min_frame_bytes,
        max_frame_bytes: rep.max_frame_bytes,
        rebuffer,
    };
    Ok((FlacWriter::from_state(state, opts)?, report))
}

/// Cuts the file at `keep_end` and writes the "still recording" STREAMINFO, then fsyncs.
///
/// Only the STREAMINFO body is rewritten: the signature and block header were checked by the
/// scan, and their "last metadata block" flag must stay as it is when other metadata blocks
/// (padding, tags from a tool) follow, or decoders would look for frames inside them.
fn cut_and_reset_header(
    file: &File,
    path: &Path,
    keep_end: u64,
    header: &StreamHeader,
) -> Result<(), SinkError> {
    file.set_len(keep_end)
        .map_err(|e| SinkError::io("truncate", path, e))?;
    let fresh = StreamHeader::partial(header.sample_rate, header.block_size).to_bytes();
    let body = fresh.get(STREAMINFO_OFFSET as usize..).unwrap_or_default();
    file.write_all_at(body, STREAMINFO_OFFSET)
        .map_err(|e| SinkError::io("write header", path, e))?;
    file.sync_all().map_err(|e| SinkError::io("fsync", path, e))
}

#[cfg(test)]
mod tests;
