//! The recordings page: the finished recordings, newest first, filterable by room and day.

use super::html::{Nav, clock, esc, page, room_title, seg, size};
use crate::sink::catalog::{Filter, Listing};
use crate::sink::sidecar::Gap;

/// The whole list page for `filter` (echoed into the form).
pub fn render(listings: &[Listing], filter: &Filter) -> String {
    let room = filter.room.as_deref().unwrap_or("");
    let date = filter.date.map(|d| d.to_string()).unwrap_or_default();
    let rows: String = if listings.is_empty() {
        "<tr><td colspan=\"6\" class=\"empty\">No finished recording matches.</td></tr>".into()
    } else {
        listings.iter().map(row).collect()
    };
    let more = if listings.len() >= filter.limit {
        format!(
            "<p class=\"muted\">Showing the newest {}; narrow the filter to see older ones.</p>",
            filter.limit
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Recordings</h1>\n<form class=\"filter\" method=\"get\" action=\"/recordings\">\
         <label>Room <input name=\"room\" value=\"{room}\" placeholder=\"any\"></label>\
         <label>Day (UTC) <input name=\"date\" type=\"date\" value=\"{date}\"></label>\
         <button>Filter</button></form>\n<div class=\"scroll\"><table class=\"recordings\">\
         <thead><tr><th>Started (UTC)</th><th>Room</th><th>Duration</th><th>Participants</th>\
         <th>Size</th><th>Status</th></tr></thead>\n<tbody>{rows}</tbody></table></div>{more}",
        room = esc(room),
        date = esc(&date),
    );
    page("Recordings", Nav::Recordings, &body)
}

/// Where a recording's page is.
pub fn href(l: &Listing) -> String {
    format!("/recordings/{}/{}", seg(&l.room_dir), seg(&l.name))
}

fn row(l: &Listing) -> String {
    let (title, duration, people) = match &l.sidecar {
        Ok(s) => (
            room_title(s.tenant.as_deref(), &s.room_name, &s.room),
            clock(s.duration().as_secs_f64()),
            participants(s),
        ),
        Err(_) => (l.room_dir.clone(), "?".into(), String::new()),
    };
    format!(
        "<tr><td><a href=\"{href}\">{started}</a></td><td>{title}</td><td>{duration}</td>\
         <td>{people}</td><td>{size}</td><td>{status}</td></tr>\n",
        href = href(l),
        started = esc(&l.started()),
        title = esc(&title),
        people = esc(&people),
        size = size(l.flac_bytes),
        status = status(l),
    )
}

fn participants(s: &crate::sink::Sidecar) -> String {
    let names: Vec<&str> = s
        .participants
        .iter()
        .filter(|p| !p.hidden_from_recorder)
        .map(|p| {
            p.display_name
                .as_deref()
                .or(p.nicks.last().map(String::as_str))
                .unwrap_or(&p.key)
        })
        .collect();
    names.join(", ")
}

/// `complete`, or what is wrong, as a short badge.
pub fn status(l: &Listing) -> String {
    match &l.sidecar {
        Err(why) => format!(
            "<span class=\"bad\" title=\"{}\">sidecar unreadable</span>",
            esc(why)
        ),
        Ok(s) if s.status != crate::sink::sidecar::Status::Final => {
            "<span class=\"bad\">not finalized</span>".into()
        }
        Ok(s) if s.gaps.is_empty() => "<span class=\"ok\">complete</span>".into(),
        Ok(s) => {
            let missing: f64 = s
                .gaps
                .iter()
                .map(|g| {
                    g.end.sample.saturating_sub(g.start.sample) as f64
                        / f64::from(s.sample_rate.max(1))
                })
                .sum();
            let mut kinds: Vec<String> = s.gaps.iter().map(gap_kind).collect();
            kinds.dedup();
            format!(
                "<span class=\"gaps\">{} gap{} ({})</span><br><small>{}</small>",
                s.gaps.len(),
                if s.gaps.len() == 1 { "" } else { "s" },
                clock(missing),
                esc(&kinds.join("; "))
            )
        }
    }
}

/// A gap's cause and detail, as one line.
pub(super) fn gap_kind(g: &Gap) -> String {
    let kind = serde_json::to_value(g.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &g.detail {
        Some(d) => format!("{kind}: {d}"),
        None => kind,
    }
}
