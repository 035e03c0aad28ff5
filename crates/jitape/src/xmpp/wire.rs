//! The component stream on the wire: cutting the server's byte stream into stanzas, with
//! limits, and parsing each stanza on its own.
//!
//! In: bytes as they arrive from Prosody. Out: [`Frame`]s — the stream header, one byte
//! buffer per complete top-level stanza, the footer, or a note that a stanza broke a limit
//! and was skipped. Pure and incremental: the caller feeds whatever `read` returned.
//!
//! Why not hand the socket to an XML stream parser: such a parser dies on the first thing it
//! refuses (rxml, under tokio-xmpp, refuses any attribute over 8 KiB), and a dead parser
//! means a dead link — one participant with an oversized presence attribute would make every
//! rejoin fail the same way. Here a stanza that is too large or too deep is skipped while its
//! bytes stream past (never buffered beyond the limit), and every stanza is parsed by a fresh
//! parser, so a bad one costs only itself.
//!
//! The splitter trusts the stream to be well-formed XML (Prosody serializes its own DOM, so
//! it is); it only needs to find where each top-level element ends: it follows tags, quoted
//! attribute values, comments, CDATA sections and processing instructions.

use minidom::Element;
use minidom::rxml::{self, Parse, RawParser, WithOptions};
use minidom::tree_builder::TreeBuilder;

/// Bounds on what one stanza may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// Bytes from a stanza's `<` to its final `>`.
    pub max_stanza: usize,
    /// Element nesting inside a stanza (the stanza element itself is depth 1).
    pub max_depth: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits {
            max_stanza: 1 << 20,
            max_depth: 32,
        }
    }
}

/// Why a stanza was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    TooLarge,
    TooDeep,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too-large",
            SkipReason::TooDeep => "too-deep",
        }
    }
}

/// One unit of the inbound stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The XML declaration (if any) and the `<stream:stream …>` open tag.
    Header(Vec<u8>),
    /// One complete top-level element.
    Stanza(Vec<u8>),
    /// A stanza that broke a limit; its bytes were dropped as they arrived. `head` is its
    /// opening tag when that tag itself fitted (enough to answer an IQ with an error).
    Skipped {
        size: usize,
        reason: SkipReason,
        head: Option<Vec<u8>>,
    },
    /// `</stream:stream>`
    Footer,
}

/// Where the lexer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data (or nothing) between tags.
    Content,
    /// Just after `<`.
    Lt,
    /// Inside a start tag (`close` false) or end tag, maybe inside a quoted value.
    Tag {
        close: bool,
        quote: Option<u8>,
        slash: bool,
    },
    /// After `<!`: `matched` bytes of `--` or `[CDATA[` seen so far.
    Bang {
        matched: usize,
        cdata: bool,
    },
    /// `<!-- … -->`, counting trailing dashes.
    Comment {
        dashes: u8,
    },
    /// `<![CDATA[ … ]]>`, counting trailing brackets.
    CData {
        brackets: u8,
    },
    /// `<? … ?>` (`q`: the previous byte was `?`) or `<!DOCTYPE …>`-like (`q` unused).
    Pi {
        q: bool,
    },
    Decl,
}

/// The stanza being cut out.
#[derive(Debug, Default)]
struct Current {
    buf: Vec<u8>,
    size: usize,
    /// Length of the opening tag, once it closed.
    head_len: Option<usize>,
    skipping: Option<SkipReason>,
    head: Option<Vec<u8>>,
    /// A comment or PI between stanzas (dropped at its end), not a stanza.
    ignorable: bool,
}

/// Cuts the inbound byte stream into [`Frame`]s.
#[derive(Debug)]
pub struct Splitter {
    limits: WireLimits,
    lex: Lex,
    /// Open elements: 0 before the stream header, 1 inside the stream, 2+ inside a stanza.
    depth: usize,
    header: Option<Vec<u8>>,
    cur: Option<Current>,
}

impl Splitter {
    pub fn new(limits: WireLimits) -> Self {
        Splitter {
            limits,
            lex: Lex::Content,
            depth: 0,
            header: Some(Vec::new()),
            cur: None,
        }
    }

    /// Feed bytes; complete frames are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        for &b in data {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Frame>) {
        if self.depth == 1 && self.cur.is_none() && self.lex == Lex::Content {
            if b != b'<' {
                return; // whitespace keepalives (or stray text) between stanzas
            }
            self.cur = Some(Current::default());
        }
        self.keep(b);
        match self.lex {
            Lex::Content => {
                if b == b'<' {
                    self.lex = Lex::Lt;
                }
            }
            Lex::Lt => {
                self.lex = match b {
                    b'/' => Lex::Tag {
                        close: true,
                        quote: None,
                        slash: false,
                    },
                    b'!' => Lex::Bang {
                        matched: 0,
                        cdata: false,
                    },
                    b'?' => Lex::Pi { q: false },
                    _ => Lex::Tag {
                        close: false,
                        quote: None,
                        slash: false,
                    },
                };
                if matches!(b, b'!' | b'?')
                    && self.depth <= 1
                    && let Some(c) = self.cur.as_mut()
                {
                    c.ignorable = true;
                }
            }
            Lex::Tag {
                close,
                quote,
                slash,
            } => match (quote, b) {
                (Some(q), _) if b == q => self.lex = tag(close, None, false),
                (Some(_), _) => {}
                (None, b'"' | b'\'') => self.lex = tag(close, Some(b), false),
                (None, b'>') => {
                    self.lex = Lex::Content;
                    self.tag_closed(close, slash, out);
                }
                (None, _) => self.lex = tag(close, None, b == b'/'),
            },
            Lex::Bang { matched, cdata } => self.bang(b, matched, cdata, out),
            Lex::Comment { dashes } => {
                self.lex = match b {
                    b'-' => Lex::Comment {
                        dashes: dashes.saturating_add(1),
                    },
                    b'>' if dashes >= 2 => {
                        self.markup_done(out);
                        Lex::Content
                    }
                    _ => Lex::Comment { dashes: 0 },
                };
            }
            Lex::CData { brackets } => {
                self.lex = match b {
                    b']' => Lex::CData {
                        brackets: brackets.saturating_add(1),
                    },
                    b'>' if brackets >= 2 => {
                        self.markup_done(out);
                        Lex::Content
                    }
                    _ => Lex::CData { brackets: 0 },
                };
            }
            Lex::Pi { q } => {
                if b == b'>' && q {
                    self.lex = Lex::Content;
                    self.markup_done(out);
                } else {
                    self.lex = Lex::Pi { q: b == b'?' };
                }
            }
            Lex::Decl => {
                if b == b'>' {
                    self.lex = Lex::Content;
                    self.markup_done(out);
                }
            }
        }
    }

    /// After `<!`: decide between a comment, a CDATA section and other markup.
    fn bang(&mut self, b: u8, matched: usize, cdata: bool, out: &mut Vec<Frame>) {
        const COMMENT: &[u8] = b"--";
        const CDATA: &[u8] = b"[CDATA[";
        let (want, is_cdata) = if matched == 0 {
            (b == b'-' || b == b'[', b == b'[')
        } else if cdata {
            (CDATA.get(matched) == Some(&b), true)
        } else {
            (COMMENT.get(matched) == Some(&b), false)
        };
        if !want {
            self.lex = Lex::Decl;
            if b == b'>' {
                self.lex = Lex::Content;
                self.markup_done(out);
            }
            return;
        }
        let matched = matched + 1;
        self.lex = match (is_cdata, matched) {
            (false, 2) => Lex::Comment { dashes: 0 },
            (true, 7) => Lex::CData { brackets: 0 },
            _ => Lex::Bang {
                matched,
                cdata: is_cdata,
            },
        };
    }

    /// Count (and unless skipping, keep) one byte of the header or the current stanza.
    fn keep(&mut self, b: u8) {
        if let Some(h) = self.header.as_mut() {
            if h.len() < self.limits.max_stanza {
                h.push(b);
            }
            return;
        }
        let max = self.limits.max_stanza;
        let Some(c) = self.cur.as_mut() else { return };
        c.size += 1;
        if c.skipping.is_some() {
            return;
        }
        if c.size > max {
            c.skip(SkipReason::TooLarge);
        } else {
            c.buf.push(b);
        }
    }

    /// A start tag (`close` false) or an end tag ended at `>`.
    fn tag_closed(&mut self, close: bool, self_closing: bool, out: &mut Vec<Frame>) {
        if close {
            self.depth = self.depth.saturating_sub(1);
        } else if !self_closing {
            self.depth += 1;
        }
        if let Some(h) = self.header.take() {
            // The first start tag is the stream header (an XML declaration may precede it).
            if close || self_closing {
                out.push(Frame::Footer);
                self.depth = 0;
                self.header = Some(Vec::new());
            } else {
                out.push(Frame::Header(h));
            }
            return;
        }
        if self.depth == 0 {
            self.cur = None;
            out.push(Frame::Footer);
            self.header = Some(Vec::new());
            return;
        }
        let max_depth = self.limits.max_depth;
        let depth = self.depth;
        // The element this tag opened sits one below the open ones, also when it is empty
        // (`<a/>` leaves the count as it was): the stream is 1, the stanza 2.
        let element = depth + usize::from(!close && self_closing);
        let Some(c) = self.cur.as_mut() else { return };
        if c.head_len.is_none() {
            c.head_len = Some(c.size);
        }
        if element > max_depth + 1 {
            c.skip(SkipReason::TooDeep);
        }
        if depth == 1 {
            self.finish(out);
        }
    }

    /// A comment, PI or declaration ended.
    fn markup_done(&mut self, _out: &mut Vec<Frame>) {
        if self.cur.as_ref().is_some_and(|c| c.ignorable) {
            self.cur = None;
        }
    }

    fn finish(&mut self, out: &mut Vec<Frame>) {
        let Some(c) = self.cur.take() else { return };
        out.push(match c.skipping {
            None => Frame::Stanza(c.buf),
            Some(reason) => Frame::Skipped {
                size: c.size,
                reason,
                head: c.head,
            },
        });
    }
}

fn tag(close: bool, quote: Option<u8>, slash: bool) -> Lex {
    Lex::Tag {
        close,
        quote,
        slash,
    }
}

impl Current {
    fn skip(&mut self, reason: SkipReason) {
        if self.skipping.is_some() {
            return;
        }
        self.skipping = Some(reason);
        self.head = self
            .head_len
            .and_then(|n| self.buf.get(..n))
            .map(<[u8]>::to_vec);
        self.buf = Vec::new();
    }
}

/// Why a stanza could not be turned into an element.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not well-formed XML: {0}")]
    Syntax(String),
    #[error("incomplete element")]
    Incomplete,
}

/// Parse one stanza cut out by the [`Splitter`], in the namespace context of the stream
/// `header` it arrived under. `max_token` bounds any one name, attribute value or text run.
pub fn parse_stanza(header: &[u8], stanza: &[u8], max_token: usize) -> Result<Element, WireError> {
    let mut tree = TreeBuilder::new();
    feed(&mut tree, &[header, stanza], max_token, false)?;
    if tree.depth() != 1 {
        return Err(WireError::Incomplete);
    }
    tree.unshift_child().ok_or(WireError::Incomplete)
}

/// Run a fresh parser over `parts` (one document) into `tree`.
fn feed(
    tree: &mut TreeBuilder,
    parts: &[&[u8]],
    max_token: usize,
    at_eof: bool,
) -> Result<(), WireError> {
    let options = rxml::Options {
        max_token_length: max_token,
        ..rxml::Options::default()
    };
    let mut parser = RawParser::with_options(options);
    for (i, part) in parts.iter().enumerate() {
        let last = at_eof && i + 1 == parts.len();
        let mut rest = *part;
        loop {
            match parser.parse(&mut rest, last) {
                Ok(Some(ev)) => tree
                    .process_event(ev)
                    .map_err(|e| WireError::Syntax(e.to_string()))?,
                Ok(None) | Err(rxml::error::EndOrError::NeedMoreData) => break,
                Err(rxml::error::EndOrError::Error(e)) => {
                    return Err(WireError::Syntax(e.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Parse a standalone element (a document of one root), with `max_token` as the bound on
/// any one name, attribute value or text run (minidom's own parser stops at 8 KiB).
pub fn parse_element(text: &[u8], max_token: usize) -> Result<Element, WireError> {
    let mut tree = TreeBuilder::new();
    feed(&mut tree, &[text], max_token, true)?;
    tree.root.take().ok_or(WireError::Incomplete)
}

/// The opening tag of a skipped stanza as an element without children (its name and
/// attributes), to address an error reply.
pub fn parse_head(header: &[u8], head: &[u8]) -> Option<Element> {
    parse_stanza(header, &self_closed(head)?, head.len().max(64)).ok()
}

/// The value of attribute `name` in a stream header (e.g. the stream `id`).
pub fn header_attr(header: &[u8], name: &str) -> Option<String> {
    let open = self_closed(strip_decl(header))?;
    let root = parse_element(&open, open.len().max(64)).ok()?;
    root.attr(name).map(str::to_string)
}

/// The opening tag of a stanza cut out by the [`Splitter`] (up to the first `>` outside a
/// quoted attribute value).
pub fn head_of(stanza: &[u8]) -> Option<&[u8]> {
    let mut quote = None;
    for (i, &b) in stanza.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return stanza.get(..=i),
            (None, _) => {}
        }
    }
    None
}

/// `<a …>` as `<a …/>`.
fn self_closed(open: &[u8]) -> Option<Vec<u8>> {
    let open = open.trim_ascii_end().strip_suffix(b">")?;
    let open = open.strip_suffix(b"/").unwrap_or(open);
    let mut closed = open.to_vec();
    closed.extend_from_slice(b"/>");
    Some(closed)
}

fn strip_decl(header: &[u8]) -> &[u8] {
    let header = header.trim_ascii_start();
    match header.windows(2).position(|w| w == b"?>") {
        Some(i) if header.starts_with(b"<?") => header.get(i + 2..).unwrap_or(header),
        _ => header,
    }
    .trim_ascii_start()
}

#[cfg(test)]
mod tests;
