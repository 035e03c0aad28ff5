//! Where a recording's files live, and safe names for hostile room names.
//!
//! In: the recording root (config), a room JID exactly as Prosody reports it (any string: the
//! room name is chosen by users) and the recording's UTC start. Out: [`RecordingPaths`]:
//! `<root>/<room_dir>/<20261121T193509Z>.flac` (+ `.partial`), the sidecar `.json` (+ `.partial`)
//! and per-participant stems, always inside `<root>`.
//!
//! [`room_dir_name`] is stable (the same room always maps to the same directory, across restarts
//! and versions: changing it is a breaking change) and injective: a name made only of lowercase
//! ASCII letters, digits, `-`, `_`, `.`, `@` (not starting with `.`, not a reserved device name,
//! at most [`MAX_READABLE`] bytes) is used as is; anything else is sanitized, truncated and
//! suffixed with `~` and 20 base32 characters (100 bits) of the SHA-1 of the original. `~` never
//! occurs in an unchanged name, so the two kinds cannot collide. The sidecar records the mapping.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha1::{Digest, Sha1};

use super::error::SinkError;
use super::flac::{PARTIAL_SUFFIX, partial_path};

/// Longest readable part of a directory or file name component.
pub const MAX_READABLE: usize = 80;
/// Characters of hash appended to a changed name.
const HASH_CHARS: usize = 20;
/// Names Windows reserves (kept off the disk too, for recordings copied to such systems).
const RESERVED: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// The directory name for a room (see the module doc).
pub fn room_dir_name(room_jid: &str) -> String {
    safe_component(room_jid, "room")
}

/// A safe, injective file-name component for `s`; `fallback` names an empty input.
pub fn safe_component(s: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_READABLE) + HASH_CHARS + 1);
    let mut changed = false;
    for ch in s.chars() {
        let c = ch.to_ascii_lowercase();
        changed |= c != ch;
        match c {
            'a'..='z' | '0'..='9' | '-' | '_' | '@' => out.push(c),
            '.' if !out.is_empty() => out.push(c),
            _ => {
                changed = true;
                if !out.ends_with('_') {
                    out.push('_');
                }
            }
        }
    }
    let base = out.split('.').next().unwrap_or("");
    if RESERVED.contains(&base) {
        changed = true;
    }
    if out.len() > MAX_READABLE {
        out.truncate(MAX_READABLE); // all ASCII: any byte index is a char boundary
        changed = true;
    }
    if out.is_empty() {
        out.push_str(fallback);
        changed = true;
    }
    if changed {
        out.push('~');
        out.push_str(&short_hash(s.as_bytes()));
    }
    out
}

/// 100 bits of SHA-1 in lowercase base32 (RFC 4648 alphabet).
fn short_hash(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha1::digest(data);
    let mut out = String::with_capacity(HASH_CHARS);
    let (mut acc, mut nbits) = (0u32, 0u32);
    for &b in digest.iter() {
        acc = (acc << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 5 && out.len() < HASH_CHARS {
            nbits -= 5;
            let idx = ((acc >> nbits) & 31) as usize;
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'a')));
        }
        acc &= (1 << nbits) - 1;
        if out.len() == HASH_CHARS {
            break;
        }
    }
    out
}

/// The file name stem of a recording started at `start`: `20261121T193509Z`.
pub fn recording_name(start: DateTime<Utc>) -> String {
    start.format("%Y%m%dT%H%M%SZ").to_string()
}

/// All the paths of one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingPaths {
    /// `<root>/<room_dir>`.
    pub dir: PathBuf,
    /// The safe directory name of the room.
    pub room_dir: String,
    /// The file name stem (`20261121T193509Z`, maybe with a `-2` suffix).
    pub name: String,
    pub flac: PathBuf,
    pub flac_partial: PathBuf,
    pub sidecar: PathBuf,
    pub sidecar_partial: PathBuf,
}

/// The paths of a recording of `room_jid` started at `start` under `root`.
pub fn recording_paths(root: &Path, room_jid: &str, start: DateTime<Utc>) -> RecordingPaths {
    RecordingPaths::new(root, &room_dir_name(room_jid), &recording_name(start))
}

/// Like [`recording_paths`], but picks `<name>-2`, `-3`, ... if files of that name already
/// exist (two recordings of one room starting within the same second).
pub fn unused_recording_paths(
    root: &Path,
    room_jid: &str,
    start: DateTime<Utc>,
) -> Result<RecordingPaths, SinkError> {
    let room_dir = room_dir_name(room_jid);
    let name = recording_name(start);
    for n in 1..1000u32 {
        let candidate = match n {
            1 => RecordingPaths::new(root, &room_dir, &name),
            _ => RecordingPaths::new(root, &room_dir, &format!("{name}-{n}")),
        };
        if !candidate.any_exists() {
            return Ok(candidate);
        }
    }
    Err(SinkError::io(
        "find a free name",
        &root.join(&room_dir),
        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    ))
}

impl RecordingPaths {
    /// The paths of recording `name` in `<root>/<room_dir>` (both already safe components).
    pub fn new(root: &Path, room_dir: &str, name: &str) -> Self {
        let dir = root.join(room_dir);
        let flac = dir.join(format!("{name}.flac"));
        let sidecar = dir.join(format!("{name}.json"));
        RecordingPaths {
            flac_partial: partial_path(&flac),
            sidecar_partial: partial_path(&sidecar),
            dir,
            room_dir: room_dir.to_string(),
            name: name.to_string(),
            flac,
            sidecar,
        }
    }

    /// The final path of the stem of participant `key`.
    pub fn stem(&self, key: &str) -> PathBuf {
        let key = safe_component(key, "participant");
        self.dir.join(format!("{}.stem.{key}.flac", self.name))
    }

    /// The `.partial` path of the stem of participant `key`.
    pub fn stem_partial(&self, key: &str) -> PathBuf {
        partial_path(&self.stem(key))
    }

    /// Creates the room directory (and the root) if needed.
    pub fn create_dir(&self) -> Result<(), SinkError> {
        fs::create_dir_all(&self.dir).map_err(|e| SinkError::io("create directory", &self.dir, e))
    }

    fn any_exists(&self) -> bool {
        [
            &self.flac,
            &self.flac_partial,
            &self.sidecar,
            &self.sidecar_partial,
        ]
        .iter()
        .any(|p| p.exists())
    }
}

/// A recording left unfinished by a crash, found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub paths: RecordingPaths,
    /// The mix `.flac.partial` exists (it may be missing if only stems survived).
    pub has_flac: bool,
    /// The `.json.partial` sidecar exists.
    pub has_sidecar: bool,
    /// `.partial` stems of this recording.
    pub stems: Vec<PathBuf>,
}

/// Finds every unfinished recording under `root` (`<root>/<room_dir>/*.partial`).
pub fn find_unfinished(root: &Path) -> Result<Vec<Unfinished>, SinkError> {
    let mut found: Vec<Unfinished> = Vec::new();
    let rooms = match fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(SinkError::io("list", root, e)),
    };
    for room in rooms {
        let room = room.map_err(|e| SinkError::io("list", root, e))?;
        if !room.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Some(room_dir) = room.file_name().to_str().map(str::to_string) else {
            continue;
        };
        note_room(&mut found, root, &room_dir)?;
    }
    found.sort_by(|a, b| (&a.paths.dir, &a.paths.name).cmp(&(&b.paths.dir, &b.paths.name)));
    Ok(found)
}

/// The unfinished recordings of one room under `root`, oldest first (by name).
pub fn find_unfinished_of(root: &Path, room_jid: &str) -> Result<Vec<Unfinished>, SinkError> {
    let mut found = Vec::new();
    let room_dir = room_dir_name(room_jid);
    match note_room(&mut found, root, &room_dir) {
        Err(e)
            if e.io_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {}
        other => other?,
    }
    found.sort_by(|a, b| a.paths.name.cmp(&b.paths.name));
    Ok(found)
}

/// Files every `.partial` of `<root>/<room_dir>` under the recording it belongs to.
fn note_room(found: &mut Vec<Unfinished>, root: &Path, room_dir: &str) -> Result<(), SinkError> {
    let dir = root.join(room_dir);
    let files = fs::read_dir(&dir).map_err(|e| SinkError::io("list", &dir, e))?;
    for file in files {
        let file = file.map_err(|e| SinkError::io("list", &dir, e))?;
        if let Some(fname) = file.file_name().to_str() {
            note_partial(found, root, room_dir, fname, file.path());
        }
    }
    Ok(())
}

/// Files a `.partial` under the recording it belongs to.
fn note_partial(
    found: &mut Vec<Unfinished>,
    root: &Path,
    room_dir: &str,
    fname: &str,
    path: PathBuf,
) {
    let Some(base) = fname.strip_suffix(PARTIAL_SUFFIX) else {
        return;
    };
    let (name, kind) = if let Some(n) = base.strip_suffix(".json") {
        (n, 0)
    } else if let Some((n, _)) = base
        .strip_suffix(".flac")
        .and_then(|b| b.split_once(".stem."))
    {
        (n, 2)
    } else if let Some(n) = base.strip_suffix(".flac") {
        (n, 1)
    } else {
        return;
    };
    let paths = RecordingPaths::new(root, room_dir, name);
    let idx = match found.iter().position(|u| u.paths == paths) {
        Some(i) => i,
        None => {
            found.push(Unfinished {
                paths,
                has_flac: false,
                has_sidecar: false,
                stems: Vec::new(),
            });
            found.len() - 1
        }
    };
    if let Some(u) = found.get_mut(idx) {
        match kind {
            0 => u.has_sidecar = true,
            1 => u.has_flac = true,
            _ => u.stems.push(path),
        }
    }
}

#[cfg(test)]
mod tests;
