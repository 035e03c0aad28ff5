//! The `wire` target: jitape's stream splitter (`xmpp::wire::Splitter`), which reads every
//! byte Prosody forwards from participants, fed in chunks the input chooses.
//!
//! In: fuzz bytes — a mode, the limits, chunk sizes, then either raw stream bytes or a script
//! for a generated, well-formed stream. Out: nothing; asserts that
//! - the frames do not depend on the chunking: fed in the chosen chunks, in one piece and byte
//!   by byte, the splitter gives the same frames;
//! - memory stays bounded: no stanza, header or kept head is longer than `max_stanza`, every
//!   stanza starts with `<` and ends with `>`, and a stanza skipped as too large was;
//! - every stanza and kept head goes through the parser without a panic;
//! - for a generated stream (header, stanzas with nested elements, quoted `>` and `/>`,
//!   comments, CDATA and processing instructions inside and between stanzas, keepalives,
//!   maybe the footer), the frames are exactly the stanzas it holds, each skipped instead when
//!   it is longer than `max_stanza` or an element in it is nested deeper than `max_depth`
//!   (whichever the bytes reach first), with its opening tag when that fitted.

use jitape::xmpp::wire::{
    Frame, SkipReason, Splitter, WireLimits, head_of, parse_head, parse_stanza,
};

/// Fuzz input layout: `[mode, stanza, depth, n, size × n, rest…]`.
pub fn run(data: &[u8]) {
    let get = |i: usize| data.get(i).copied().unwrap_or(0);
    let limits = WireLimits {
        max_stanza: 24 + 16 * usize::from(get(1)),
        max_depth: 1 + usize::from(get(2) % 10),
    };
    let n = 1 + usize::from(get(3) % 8);
    let sizes: Vec<usize> = (0..n).map(|i| 1 + usize::from(get(4 + i))).collect();
    let rest = data.get(4 + n..).unwrap_or_default();
    let (stream, expected) = if get(0) & 1 == 1 {
        let (bytes, frames) = generate(rest, limits);
        (bytes, Some(frames))
    } else {
        (rest.to_vec(), None)
    };
    let whole = split(&stream, &[stream.len().max(1)], limits);
    let chunked = split(&stream, &sizes, limits);
    assert_eq!(
        chunked, whole,
        "the frames depend on the chunking {sizes:?}"
    );
    assert_eq!(split(&stream, &[1], limits), whole, "byte by byte");
    check_frames(&whole, limits);
    if let Some(expected) = expected {
        assert_eq!(
            whole,
            expected,
            "the frames of a generated stream:\n{}",
            String::from_utf8_lossy(&stream)
        );
    }
}

/// Feeds `stream` in chunks of `sizes` (cycled).
pub fn split(stream: &[u8], sizes: &[usize], limits: WireLimits) -> Vec<Frame> {
    let mut s = Splitter::new(limits);
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < stream.len() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let end = (at + n).min(stream.len());
        s.push(&stream[at..end], &mut out);
        at = end;
        i += 1;
    }
    out
}

fn check_frames(frames: &[Frame], limits: WireLimits) {
    let max = limits.max_stanza;
    let mut header: &[u8] = &[];
    for f in frames {
        match f {
            Frame::Header(h) => {
                assert!(h.len() <= max, "a header of {} bytes kept", h.len());
                header = h;
            }
            Frame::Stanza(b) => {
                assert!(b.len() <= max, "a stanza of {} bytes kept", b.len());
                assert!(b.first() == Some(&b'<') && b.last() == Some(&b'>'), "{b:?}");
                let _ = parse_stanza(header, b, max);
                if let Some(h) = head_of(b) {
                    let _ = parse_head(header, h);
                }
            }
            Frame::Skipped { size, reason, head } => {
                if *reason == SkipReason::TooLarge {
                    assert!(*size > max, "skipped as too large at {size} bytes");
                }
                if let Some(h) = head {
                    assert!(h.len() <= max && h.len() <= *size, "a head of {}", h.len());
                    let _ = parse_head(header, h);
                }
            }
            Frame::Footer => {}
        }
    }
}

/// Reads the generator's choices (zero past the end).
struct Script<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Script<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[usize::from(self.u8()) % from.len()]
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

const HEADER: &str = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='h1'>";
const NAMES: &[&str] = &[
    "iq",
    "presence",
    "message",
    "x",
    "body",
    "a",
    "q:v",
    "stream:error",
];
const ATTRS: &[&str] = &["id", "to", "from", "type", "xmlns", "a"];
/// Values for `'`-quoted attributes, then for `"`-quoted ones.
const SINGLE: &[&str] = &["a>b", "x/>y", "<not a tag>", "\"", "", "]]>", "--", "/"];
const DOUBLE: &[&str] = &["a>b", "x/>y", "<no>", "'", "", "?>", "/", "-->"];
const TEXT: &[&str] = &[
    "hello",
    "a > b",
    "x/y",
    "&lt;&amp;",
    " ",
    "]]",
    "--",
    "?>",
    "'\"",
];
const COMMENT: &[&str] = &[" c ", " a > b ", " <tag> ", " -", " -- x ", ""];
const CDATA: &[&str] = &[" raw <x> ", "]] ]>", "a]b", "]", ""];
const PI: &[&str] = &[" x ", "a > b", "??", "? >", ""];
const BETWEEN: &[&str] = &[" ", "\n", "\t\r\n ", "keepalive text"];

/// A stream from `script` and the frames the splitter must give for it.
fn generate(script: &[u8], limits: WireLimits) -> (Vec<u8>, Vec<Frame>) {
    let mut g = Script {
        data: script,
        pos: 0,
    };
    let mut out = Vec::new();
    if g.u8() & 1 == 1 {
        out.extend_from_slice(b"<?xml version='1.0'?>\n");
    }
    out.extend_from_slice(HEADER.as_bytes());
    let kept = out.len().min(limits.max_stanza);
    let mut frames = vec![Frame::Header(out[..kept].to_vec())];
    let mut items = 0;
    while !g.done() && items < 40 {
        items += 1;
        match g.u8() % 9 {
            0..=3 => {
                let mut st = Stanza::default();
                let mut budget = 150;
                element(&mut g, &mut st, 1, limits.max_depth, &mut budget);
                frames.push(st.frame(limits.max_stanza));
                out.extend_from_slice(&st.bytes);
            }
            4 | 5 => out.extend_from_slice(g.pick(BETWEEN).as_bytes()),
            6 => out.extend_from_slice(format!("<!--{}-->", g.pick(COMMENT)).as_bytes()),
            7 => out.extend_from_slice(format!("<?pi {}?>", g.pick(PI)).as_bytes()),
            _ => out.extend_from_slice(format!("<![CDATA[{}]]>", g.pick(CDATA)).as_bytes()),
        }
    }
    if g.u8().is_multiple_of(4) {
        out.extend_from_slice(b"</stream:stream>");
        frames.push(Frame::Footer);
    }
    (out, frames)
}

/// One generated stanza: its bytes, where its opening tag ends and where the first element
/// nested too deep has its start tag's `>`.
#[derive(Default)]
struct Stanza {
    bytes: Vec<u8>,
    open_len: Option<usize>,
    too_deep_at: Option<usize>,
}

impl Stanza {
    /// What the splitter must make of it. A stanza is skipped at the first byte that breaks a
    /// limit: byte `max` (the stanza is then larger than `max`), or the `>` of a start tag
    /// nested deeper than allowed; it keeps its opening tag if that closed within the limit.
    fn frame(&self, max: usize) -> Frame {
        let large_at = (self.bytes.len() > max).then_some(max);
        let reason = match (large_at, self.too_deep_at) {
            (None, None) => return Frame::Stanza(self.bytes.clone()),
            (Some(l), Some(d)) if d < l => SkipReason::TooDeep,
            (Some(_), _) => SkipReason::TooLarge,
            (None, Some(_)) => SkipReason::TooDeep,
        };
        let head = self
            .open_len
            .filter(|n| *n <= max)
            .map(|n| self.bytes[..n].to_vec());
        Frame::Skipped {
            size: self.bytes.len(),
            reason,
            head,
        }
    }
}

/// Appends an element at nesting `depth` (the stanza is 1).
fn element(g: &mut Script, st: &mut Stanza, depth: usize, max_depth: usize, budget: &mut usize) {
    *budget = budget.saturating_sub(1);
    let name = g.pick(NAMES);
    let out = &mut st.bytes;
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    for _ in 0..g.u8() % 4 {
        let (quote, value) = if g.u8() & 1 == 1 {
            ('\'', g.pick(SINGLE))
        } else {
            ('"', g.pick(DOUBLE))
        };
        let attr = g.pick(ATTRS);
        out.extend_from_slice(format!(" {attr}={quote}{value}{quote}").as_bytes());
    }
    let kids = if depth < 48 && *budget > 0 {
        g.u8() % 4
    } else {
        0
    };
    let self_closing = kids == 0 && g.u8() & 1 == 1;
    out.extend_from_slice(if self_closing {
        g.pick(&["/>", " />"]).as_bytes()
    } else {
        b">"
    });
    let end = out.len();
    st.open_len.get_or_insert(end);
    if depth > max_depth {
        st.too_deep_at.get_or_insert(end - 1);
    }
    if self_closing {
        return;
    }
    for _ in 0..kids {
        match g.u8() % 7 {
            0..=2 => element(g, st, depth + 1, max_depth, budget),
            3 => st.bytes.extend_from_slice(g.pick(TEXT).as_bytes()),
            4 => st
                .bytes
                .extend_from_slice(format!("<!--{}-->", g.pick(COMMENT)).as_bytes()),
            5 => st
                .bytes
                .extend_from_slice(format!("<![CDATA[{}]]>", g.pick(CDATA)).as_bytes()),
            _ => st
                .bytes
                .extend_from_slice(format!("<?pi {}?>", g.pick(PI)).as_bytes()),
        }
    }
    st.bytes.extend_from_slice(format!("</{name}>").as_bytes());
}
