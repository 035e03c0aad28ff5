//! One recording: its speaker timeline (a lane per participant with presence and speaking
//! segments, gaps marked), a player on the FLAC (clicking a segment plays from there), the
//! list of who spoke when, the gaps with their reasons, and the files to download.

use std::fmt::Write;

use super::html::{Nav, clock, esc, page, room_title, seg, size};
use super::list::{gap_kind, href, status};
use crate::sink::catalog::Listing;
use crate::sink::sidecar::{Gap, Participant, Sidecar, TimePoint};

/// The recording page. `listing.sidecar` must be readable; without it there is only the
/// download link (see [`render_without_sidecar`]).
pub fn render(listing: &Listing, sc: &Sidecar) -> String {
    let base = href(listing);
    let rate = f64::from(sc.sample_rate.max(1));
    let total = (sc.total_samples as f64 / rate).max(0.001);
    let at = |t: &TimePoint| t.sample as f64 / rate;
    let title = room_title(sc.tenant.as_deref(), &sc.room_name, &sc.room);
    let people: Vec<&Participant> = sc
        .participants
        .iter()
        .filter(|p| !p.hidden_from_recorder)
        .collect();
    let hidden = sc.participants.len() - people.len();
    let mut body = format!(
        "<h1>{title} <small>{started} UTC</small></h1>\n<p class=\"facts\">{status} · {dur} · {size}{reason}{hidden}</p>\n\
         <audio id=\"player\" controls preload=\"metadata\" src=\"{base}/audio.flac\"></audio>\n",
        title = esc(&title),
        started = esc(&listing.started()),
        status = status(listing),
        dur = clock(total),
        size = size(listing.flac_bytes),
        reason = sc
            .end_reason
            .as_deref()
            .map(|r| format!(" · ended: {}", esc(r)))
            .unwrap_or_default(),
        hidden = if hidden > 0 {
            format!(" · {hidden} participant(s) asked not to be recorded")
        } else {
            String::new()
        },
    );
    body.push_str(&timeline(&people, &sc.gaps, total, at));
    body.push_str(&segments(&people, at));
    body.push_str(&gaps(&sc.gaps, at));
    body.push_str(&files(&base, listing, &people));
    page(&title, Nav::Recordings, &body)
}

/// The page of a recording whose sidecar cannot be read.
pub fn render_without_sidecar(listing: &Listing, why: &str) -> String {
    let base = href(listing);
    let body = format!(
        "<h1>{room} <small>{started} UTC</small></h1>\n<p class=\"bad\">The sidecar cannot be read: {why}</p>\n\
         <audio id=\"player\" controls preload=\"metadata\" src=\"{base}/audio.flac\"></audio>\n\
         <p><a href=\"{base}/audio.flac\" download>Download the FLAC</a> ({size})</p>",
        room = esc(&listing.room_dir),
        started = esc(&listing.started()),
        why = esc(why),
        size = size(listing.flac_bytes),
    );
    page(&listing.room_dir, Nav::Recordings, &body)
}

fn name(p: &Participant) -> &str {
    p.display_name
        .as_deref()
        .or(p.nicks.last().map(String::as_str))
        .unwrap_or(&p.key)
}

/// `left` and `width` in percent of the recording.
fn span(start: f64, end: f64, total: f64) -> String {
    let left = (start / total * 100.0).clamp(0.0, 100.0);
    let width = ((end - start) / total * 100.0).clamp(0.0, 100.0 - left);
    format!("left:{left:.3}%;width:{width:.3}%")
}

fn timeline(
    people: &[&Participant],
    gaps: &[Gap],
    total: f64,
    at: impl Fn(&TimePoint) -> f64,
) -> String {
    let mut out = format!(
        "<section class=\"timeline\" data-duration=\"{total:.3}\">{}",
        axis(total)
    );
    let gap_marks: String = gaps
        .iter()
        .map(|g| {
            format!(
                "<div class=\"gap\" style=\"{}\" title=\"{}\"></div>",
                span(at(&g.start), at(&g.end), total),
                esc(&gap_kind(g))
            )
        })
        .collect();
    for p in people {
        let _ = write!(
            out,
            "<div class=\"lane\"><div class=\"who\" title=\"{n}\">{n}</div><div class=\"track\">",
            n = esc(name(p))
        );
        for stay in &p.presence {
            let end = stay.leave.as_ref().map_or(total, &at);
            let _ = write!(
                out,
                "<div class=\"presence\" style=\"{}\"></div>",
                span(at(&stay.join), end, total)
            );
        }
        out.push_str(&gap_marks);
        for s in &p.speaking {
            let (a, b) = (at(&s.start), at(&s.end));
            let _ = write!(
                out,
                "<button class=\"seg\" data-t=\"{a:.3}\" style=\"{}\" title=\"{} {}–{}\"></button>",
                span(a, b, total),
                esc(name(p)),
                clock(a),
                clock(b)
            );
        }
        out.push_str("</div></div>\n");
    }
    out.push_str("<div class=\"playhead\" id=\"playhead\"></div></section>\n");
    out
}

/// The time axis above the lanes.
fn axis(total: f64) -> String {
    let mut out = String::from("<div class=\"axis\">");
    let step = tick_step(total);
    let mut t = 0.0;
    while t <= total {
        let _ = write!(
            out,
            "<span style=\"left:{:.3}%\">{}</span>",
            t / total * 100.0,
            clock(t)
        );
        t += step;
    }
    out.push_str("</div>\n");
    out
}

/// Ticks at a round step that gives about eight of them.
fn tick_step(total: f64) -> f64 {
    [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0]
        .into_iter()
        .find(|s| total / s <= 10.0)
        .unwrap_or(7200.0)
}

/// Every speaking segment in time order, as a list that plays from its start on a click.
fn segments(people: &[&Participant], at: impl Fn(&TimePoint) -> f64) -> String {
    let mut all: Vec<(f64, f64, &str)> = people
        .iter()
        .flat_map(|p| {
            p.speaking
                .iter()
                .map(|s| (at(&s.start), at(&s.end), name(p)))
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    if all.is_empty() {
        return "<h2>Who spoke when</h2><p class=\"muted\">Nobody spoke.</p>\n".into();
    }
    let items: String = all
        .iter()
        .map(|(a, b, who)| {
            format!(
                "<li data-speaker=\"{w}\" data-start=\"{a:.3}\"><button class=\"at\" data-t=\"{a:.3}\">{from}</button> <b>{w}</b> <span class=\"muted\">{len:.1} s</span></li>",
                w = esc(who),
                from = clock(*a),
                len = b - a
            )
        })
        .collect();
    format!("<h2>Who spoke when</h2><ol class=\"segments\">{items}</ol>\n")
}

fn gaps(gaps: &[Gap], at: impl Fn(&TimePoint) -> f64) -> String {
    if gaps.is_empty() {
        return String::new();
    }
    let items: String = gaps
        .iter()
        .map(|g| {
            let (a, b) = (at(&g.start), at(&g.end));
            format!(
                "<li><button class=\"at\" data-t=\"{a:.3}\">{}</button>–{} ({:.1} s) {}</li>",
                clock(a),
                clock(b),
                b - a,
                esc(&gap_kind(g))
            )
        })
        .collect();
    format!(
        "<h2>Gaps</h2><p class=\"muted\">The file holds silence here.</p><ul class=\"gaps\">{items}</ul>\n"
    )
}

fn files(base: &str, listing: &Listing, people: &[&Participant]) -> String {
    let mut out = format!(
        "<h2>Files</h2><ul class=\"files\"><li><a href=\"{base}/audio.flac\" download=\"{n}.flac\">The recording (FLAC, {size})</a></li>\
         <li><a href=\"{base}/sidecar.json\" download=\"{n}.json\">The sidecar (JSON)</a></li>",
        n = esc(&listing.name),
        size = size(listing.flac_bytes),
    );
    for p in people {
        if let Some(stem) = &p.stem {
            let _ = write!(
                out,
                "<li><a href=\"{base}/stems/{}\" download>{}'s own track (FLAC)</a></li>",
                seg(stem),
                esc(name(p))
            );
        }
    }
    out.push_str("</ul>\n");
    out
}
