//! The live view: every conference being recorded now, refreshed by the page every two
//! seconds from [`rows`] (server-rendered; the script only swaps the table body).

use super::html::{Nav, clock, esc, page, room_title, size};
use crate::conference::snapshot::ConferenceSnapshot;

/// A source that sent nothing for longer than this is shown as quiet.
const QUIET_MS: u64 = 5_000;

/// The whole live page.
pub fn render(conferences: &[ConferenceSnapshot]) -> String {
    let body = format!(
        "<h1>Live <small id=\"count\">{n} recording</small></h1>\n\
         <div class=\"scroll\"><table class=\"live\" data-refresh=\"/live/rows\">\
         <thead><tr><th>Room</th><th>Since</th><th>Recorded</th><th>Present</th>\
         <th>Media</th><th>Last packet</th><th>Warnings</th></tr></thead>\n\
         <tbody id=\"live-rows\">{rows}</tbody></table></div>",
        n = conferences.len(),
        rows = rows(conferences),
    );
    page("Live", Nav::Live, &body)
}

/// The table body: one row per conference, sorted by room.
pub fn rows(conferences: &[ConferenceSnapshot]) -> String {
    if conferences.is_empty() {
        return "<tr><td colspan=\"7\" class=\"empty\">Nothing is being recorded.</td></tr>".into();
    }
    let mut sorted: Vec<&ConferenceSnapshot> = conferences.iter().collect();
    sorted.sort_by(|a, b| a.room.cmp(&b.room));
    sorted.into_iter().map(row).collect()
}

fn row(c: &ConferenceSnapshot) -> String {
    let since = c
        .start
        .as_deref()
        .and_then(|s| s.get(..19))
        .map_or_else(|| "not yet".to_string(), |s| s.replace('T', " "));
    let last = c.sources.iter().filter_map(|s| s.last_packet_ms).min();
    let last = match last {
        Some(ms) if ms > QUIET_MS => {
            format!("<span class=\"warn\">{}</span>", clock(ms as f64 / 1e3))
        }
        Some(ms) => format!("{:.1} s", ms as f64 / 1e3),
        None => "none yet".into(),
    };
    format!(
        "<tr data-room=\"{room_attr}\"><td><b>{title}</b><br><small>{room}</small></td>\
         <td>{since} UTC</td><td>{recorded}<br><small>{bytes}</small></td><td>{people}</td>\
         <td>{media}</td><td>{last}</td><td>{warnings}</td></tr>\n",
        room_attr = esc(&c.room),
        title = esc(&room_title(c.tenant.as_deref(), &c.room_name, &c.room)),
        room = esc(&c.room),
        since = esc(&since),
        recorded = clock(c.seconds_recorded),
        bytes = size(c.file_bytes),
        people = people(c),
        media = esc(c.media_state.as_deref().unwrap_or("no session")),
        warnings = warnings(c),
    )
}

/// Who is present, the ones speaking now marked.
fn people(c: &ConferenceSnapshot) -> String {
    let present: Vec<String> = c
        .participants
        .iter()
        .filter(|p| p.present)
        .map(|p| {
            let name = esc(p.display_name.as_deref().unwrap_or(&p.nick));
            if p.speaking {
                format!("<span class=\"speaking\" title=\"speaking now\">{name}</span>")
            } else {
                format!("<span class=\"person\">{name}</span>")
            }
        })
        .collect();
    if present.is_empty() {
        "<span class=\"muted\">nobody</span>".into()
    } else {
        present.join(" ")
    }
}

fn warnings(c: &ConferenceSnapshot) -> String {
    let mut out = Vec::new();
    if let Some(ms) = c.deaf_ms {
        out.push(format!(
            "deaf for {}: {} (silence, listed as a gap)",
            clock(ms as f64 / 1e3),
            c.deaf_why.as_deref().unwrap_or("no media session")
        ));
    }
    if c.write_failures > 0 {
        out.push(format!(
            "the disk refused {} write(s): audio lost as silence",
            c.write_failures
        ));
    }
    if c.write_backlog_ms >= 2_000 {
        out.push(format!(
            "{} of audio waiting for a slow disk",
            clock(c.write_backlog_ms as f64 / 1e3)
        ));
    }
    if let Some(p) = &c.media_problem {
        out.push(format!("media: {p}"));
    }
    if c.away {
        out.push("away: too few people for the bridge to send audio".into());
    }
    if !c.joined {
        out.push("not in the room right now".into());
    }
    out.iter()
        .map(|w| format!("<div class=\"warn\">{}</div>", esc(w)))
        .collect()
}
