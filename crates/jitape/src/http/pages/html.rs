//! Building blocks of the pages: escaping, the common layout, durations and sizes.

use std::fmt::Write;

/// The style sheet and the script every page carries inline (no build step, no CDN: the
/// page works on a network without internet).
const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/page.js");

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A URL path segment: everything but unreserved characters percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Which page of the navigation is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Live,
    Recordings,
    /// The login form: no navigation (it would lead back to the form).
    SignIn,
}

/// A whole page around `body`.
pub fn page(title: &str, nav: Nav, body: &str) -> String {
    let link = |href: &str, text: &str, on: bool| {
        let current = if on { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"{href}\"{current}>{text}</a>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · jitape</title><style>{STYLE}</style></head>\n<body>\
         <header><span class=\"brand\">jitape</span><nav>{live}{recs}</nav></header>\n\
         <main>\n{body}\n</main>\n<script>{SCRIPT}</script></body></html>\n",
        title = esc(title),
        live = if nav == Nav::SignIn {
            String::new()
        } else {
            link("/live", "Live", nav == Nav::Live)
        },
        recs = if nav == Nav::SignIn {
            String::new()
        } else {
            link("/recordings", "Recordings", nav == Nav::Recordings)
        },
    )
}

/// `1:02:03` or `2:03` for a number of seconds (whole seconds passed, as players show).
pub fn clock(secs: f64) -> String {
    let t = secs.max(0.0).floor() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `12.3 MB` and so on (decimal units, as file managers show them).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The room as users see it in the URL: `tenant/room` or `room`.
pub fn room_title(tenant: Option<&str>, room_name: &str, fallback: &str) -> String {
    let room = if room_name.is_empty() {
        fallback
    } else {
        room_name
    };
    match tenant {
        Some(t) => format!("{t}/{room}"),
        None => room.to_string(),
    }
}
