//! Reading what jitape logged during a benchmark run: the audio totals of every finalized
//! recording (`audio totals packets=… lost=…`, info), every source renegotiation with its
//! duration and m-line count (`sources renegotiated … m_lines=… took_us=…`, debug in
//! `jitape::media::session`), the rooms jitape refused to record, and the warnings and
//! errors.
//!
//! In: the text of jitape's log (tracing's default format, no colours). Out: a [`LogScan`].
//! Pure. When the totals line carries no `room=` (it is logged from a blocking thread that
//! does not enter the conference's span), it is attributed to the room of the next
//! `recording finalized flac=…` line, which does; the sum over rooms is exact either way.

use std::collections::{BTreeMap, VecDeque};

/// The audio totals jitape logged when it finalized a room's recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioTotals {
    pub packets: u64,
    pub lost: u64,
    pub concealed: u64,
    pub late: u64,
    pub unknown_ssrc: u64,
    pub write_failures: u64,
}

/// One local SDP renegotiation of a media session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renegotiation {
    pub m_lines: u64,
    pub took_us: u64,
}

/// Everything the benchmark takes from the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogScan {
    /// Per room (lower case), summed over its recordings.
    pub totals: BTreeMap<String, AudioTotals>,
    pub renegotiations: Vec<Renegotiation>,
    pub warnings: u64,
    pub errors: u64,
    /// The first few warning/error lines, for the report.
    pub first_problems: Vec<String>,
    /// Rooms (lower case) jitape said it would not record for now (`not recording this
    /// room for now`, with the reason): its refusals, by name.
    pub refused: std::collections::BTreeSet<String>,
}

/// The value of `key=` in `line` (up to a space, `}` or `,`).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = line[from..].find(key) {
        let at = from + pos;
        let before_ok = at == 0 || matches!(line.as_bytes()[at - 1], b' ' | b'{' | b',');
        let value_start = at + key.len();
        if before_ok && line[value_start..].starts_with('=') {
            let rest = &line[value_start + 1..];
            let end = rest.find([' ', '}', ',']).unwrap_or(rest.len());
            return Some(&rest[..end]);
        }
        from = value_start;
    }
    None
}

fn number(line: &str, key: &str) -> u64 {
    field(line, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl AudioTotals {
    fn parse(line: &str) -> Self {
        AudioTotals {
            packets: number(line, "packets"),
            lost: number(line, "lost"),
            concealed: number(line, "concealed"),
            late: number(line, "late"),
            unknown_ssrc: number(line, "unknown_ssrc"),
            write_failures: number(line, "write_failures"),
        }
    }

    fn add(&mut self, o: &AudioTotals) {
        self.packets += o.packets;
        self.lost += o.lost;
        self.concealed += o.concealed;
        self.late += o.late;
        self.unknown_ssrc += o.unknown_ssrc;
        self.write_failures += o.write_failures;
    }
}

/// Scans a whole log.
pub fn scan(log: &str) -> LogScan {
    let mut out = LogScan::default();
    let mut unattributed: VecDeque<AudioTotals> = VecDeque::new();
    for line in log.lines() {
        let level = line.split_whitespace().nth(1).unwrap_or("");
        match level {
            "WARN" => out.warnings += 1,
            "ERROR" => out.errors += 1,
            _ => {}
        }
        if matches!(level, "WARN" | "ERROR") && out.first_problems.len() < 10 {
            out.first_problems.push(line.chars().take(300).collect());
        }
        if line.contains(" audio totals ") {
            let totals = AudioTotals::parse(line);
            match field(line, "room") {
                Some(room) => out
                    .totals
                    .entry(room.to_lowercase())
                    .or_default()
                    .add(&totals),
                None => unattributed.push_back(totals),
            }
        } else if line.contains("recording finalized")
            && field(line, "flac").is_some()
            && let Some(room) = field(line, "room")
        {
            if let Some(t) = unattributed.pop_front() {
                out.totals.entry(room.to_lowercase()).or_default().add(&t);
            }
        } else if line.contains("not recording this room for now")
            && let Some(room) = field(line, "room")
        {
            out.refused.insert(room.to_lowercase());
        } else if line.contains("sources renegotiated") && field(line, "took_us").is_some() {
            out.renegotiations.push(Renegotiation {
                m_lines: number(line, "m_lines"),
                took_us: number(line, "took_us"),
            });
        }
    }
    for t in unattributed {
        out.totals.entry(String::new()).or_default().add(&t);
    }
    out
}

#[cfg(test)]
mod tests;
