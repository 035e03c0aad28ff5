//! The finished recordings on disk, for the recordings page: listing, and resolving a
//! requested file to a path that is certainly one of jitape's own files under the root.
//!
//! In: the recording root and names taken from a URL (hostile: anything a client sends).
//! Out: [`Listing`]s, newest first, or the path of a mix, a sidecar or a stem.
//!
//! A request names a recording by its room directory and its file stem, exactly as
//! [`super::paths`] writes them. Names are checked against what jitape produces (so `..`,
//! slashes, encoded or not, and dot files never reach the file system), and every component on
//! the way is checked to be a real directory or file, not a symbolic link, so a link planted
//! in the recording directory cannot expose anything outside it. Blocking file I/O: call it
//! off the async runtime.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::paths::RecordingPaths;
use super::sidecar::{self, Sidecar, Status};

/// Longest accepted room directory name (jitape writes at most 80 + 21 bytes).
const MAX_ROOM_DIR: usize = 128;

/// One finished recording.
#[derive(Debug, Clone)]
pub struct Listing {
    pub room_dir: String,
    /// The file stem (`20261121T193509Z`, maybe `-2`).
    pub name: String,
    pub flac_bytes: u64,
    /// The sidecar, if it could be read (`Err`: why not, for the page to say).
    pub sidecar: Result<Sidecar, String>,
}

impl Listing {
    /// The recording's start as written in its name, `YYYY-MM-DD HH:MM:SS` UTC.
    pub fn started(&self) -> String {
        let n = &self.name;
        match (
            n.get(0..4),
            n.get(4..6),
            n.get(6..8),
            n.get(9..11),
            n.get(11..13),
            n.get(13..15),
        ) {
            (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
                format!("{y}-{mo}-{d} {h}:{mi}:{s}")
            }
            _ => n.clone(),
        }
    }

    /// Whether the recording is whole: finalized, and no gap in it.
    pub fn complete(&self) -> bool {
        self.sidecar
            .as_ref()
            .is_ok_and(|s| s.status == Status::Final && s.gaps.is_empty())
    }
}

/// Which recordings to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A part of the room's name (any case), matched against the room directory and the
    /// sidecar's room, tenant and room name.
    pub room: Option<String>,
    /// The UTC day the recording started.
    pub date: Option<NaiveDate>,
    /// At most this many (newest first).
    pub limit: usize,
}

/// A file of a recording that can be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Mix,
    Sidecar,
    /// A stem by its file name (`<name>.stem.<key>.flac`).
    Stem(String),
}

/// Why a requested file is not served. Both mean "not found" to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The names are not names jitape writes.
    BadName,
    /// No such regular file (or a link, or something else in the way).
    Missing,
}

/// The finished recordings under `root` that match `filter`, newest first.
pub fn list(root: &Path, filter: &Filter) -> io::Result<Vec<Listing>> {
    let mut found: Vec<(String, String)> = Vec::new();
    for room in real_entries(root, true)? {
        let dir = root.join(&room);
        for file in real_entries(&dir, false).unwrap_or_default() {
            let Some(name) = file.strip_suffix(".flac") else {
                continue;
            };
            if !is_recording_name(name) || !matches_date(name, filter.date) {
                continue;
            }
            found.push((name.to_string(), room.clone()));
        }
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    let needle = filter.room.as_deref().map(str::to_lowercase);
    let mut out = Vec::new();
    for (name, room_dir) in found {
        if out.len() >= filter.limit {
            break;
        }
        let listing = read_listing(root, &room_dir, &name);
        if needle.as_deref().is_none_or(|n| room_matches(&listing, n)) {
            out.push(listing);
        }
    }
    Ok(out)
}

/// One finished recording, named as in a URL.
pub fn open(root: &Path, room_dir: &str, name: &str) -> Result<Listing, Refusal> {
    resolve(root, room_dir, name, &FileKind::Mix)?;
    Ok(read_listing(root, room_dir, name))
}

/// The path of a recording's file, if it is one of jitape's finished files under `root`
/// (see the module doc).
pub fn resolve(
    root: &Path,
    room_dir: &str,
    name: &str,
    kind: &FileKind,
) -> Result<PathBuf, Refusal> {
    if !is_room_dir(room_dir) || !is_recording_name(name) {
        return Err(Refusal::BadName);
    }
    let paths = RecordingPaths::new(root, room_dir, name);
    let file = match kind {
        FileKind::Mix => paths.flac,
        FileKind::Sidecar => paths.sidecar,
        FileKind::Stem(f) => {
            let key = f
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(".stem."))
                .and_then(|r| r.strip_suffix(".flac"));
            if !key.is_some_and(is_room_dir) {
                return Err(Refusal::BadName);
            }
            paths.dir.join(f)
        }
    };
    let real_dir = fs::symlink_metadata(&paths.dir).is_ok_and(|m| m.file_type().is_dir());
    let real_file = fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file());
    if !real_dir || !real_file || !inside(root, &file) {
        return Err(Refusal::Missing);
    }
    Ok(file)
}

/// A name [`super::paths::safe_component`] can produce (room directories, stem keys).
pub fn is_room_dir(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ROOM_DIR
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'@' | b'.' | b'~'))
}

/// A name [`super::paths::recording_name`] produces: `YYYYMMDDTHHMMSSZ`, maybe `-N`.
pub fn is_recording_name(s: &str) -> bool {
    let b = s.as_bytes();
    let stamp = b.len() >= 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    // `get`: a hostile name may have a multi-byte character across byte 16.
    let suffix = s.get(16..).unwrap_or("");
    stamp
        && (suffix.is_empty()
            || suffix.strip_prefix('-').is_some_and(|n| {
                (1..=3).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_digit())
            }))
}

fn matches_date(name: &str, date: Option<NaiveDate>) -> bool {
    date.is_none_or(|d| name.starts_with(&d.format("%Y%m%d").to_string()))
}

fn room_matches(listing: &Listing, needle: &str) -> bool {
    let mut fields = vec![listing.room_dir.clone()];
    if let Ok(s) = &listing.sidecar {
        fields.push(s.room.clone());
        fields.push(s.room_name.clone());
        fields.extend(s.tenant.clone());
    }
    fields.iter().any(|f| f.to_lowercase().contains(needle))
}

fn read_listing(root: &Path, room_dir: &str, name: &str) -> Listing {
    let paths = RecordingPaths::new(root, room_dir, name);
    let flac_bytes = fs::metadata(&paths.flac).map_or(0, |m| m.len());
    let sidecar = match fs::symlink_metadata(&paths.sidecar) {
        Ok(m) if m.file_type().is_file() => {
            sidecar::read(&paths.sidecar).map_err(|e| e.to_string())
        }
        _ => Err("no sidecar".to_string()),
    };
    Listing {
        room_dir: room_dir.to_string(),
        name: name.to_string(),
        flac_bytes,
        sidecar,
    }
}

/// Names in `dir` that are real directories (`dirs`) or real files, with names jitape
/// could have written (no links, no dot files).
fn real_entries(dir: &Path, dirs: bool) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let wanted = if dirs { kind.is_dir() } else { kind.is_file() };
        let name = entry.file_name();
        match name.to_str() {
            Some(n) if wanted && (!dirs || is_room_dir(n)) => out.push(n.to_string()),
            _ => {}
        }
    }
    Ok(out)
}

/// Whether `file` really lies under `root` once every link is resolved.
fn inside(root: &Path, file: &Path) -> bool {
    match (root.canonicalize(), file.canonicalize()) {
        (Ok(r), Ok(f)) => f.starts_with(r),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
