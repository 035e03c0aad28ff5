//! Wire-level helpers for a component connection of the simulated server: reading the
//! peer's stream header by hand, and the I/O wrapper that replays a normalised header into
//! tokio-xmpp's parser and enforces the stanza size limit.
//!
//! In: raw bytes from the socket. Out: the header's `to` and a replayable header; bytes for
//! the XML parser, with an error once one element exceeds the limit. tokio-xmpp 6 has no
//! responder-side "skip features", so the server cannot use `accept_stream` for XEP-0114:
//! it reads the header here, then lets `initiate_stream` send its own header and parse the
//! replayed one.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use minidom::Element;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;

use super::xml::NS_STREAM;

/// Bound for the peer's stream header (declaration included).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why the peer's stream header was not acceptable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    // Peer misbehaved.
    #[error("malformed stream header")]
    Malformed,
    #[error("stream header in an unexpected namespace")]
    BadNamespace,
    #[error("peer closed before sending a header")]
    Closed,
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// The peer's stream header as we need it.
pub(crate) struct PeerHeader {
    pub(crate) to: Option<String>,
    /// A normalised header to replay into tokio-xmpp's parser: same prefix and default
    /// namespace as the peer declared, no other attributes.
    pub(crate) replay: String,
}

pub(crate) async fn read_header(io: &mut BufStream<TcpStream>) -> Result<PeerHeader, HeaderError> {
    let mut scanner = HeaderScanner::default();
    loop {
        let buf = io.fill_buf().await?;
        if buf.is_empty() {
            return Err(HeaderError::Closed);
        }
        let (used, done) = scanner.feed(buf)?;
        io.consume(used);
        if done {
            return parse_header(&scanner.tag);
        }
    }
}

/// Finds the end of the stream start tag, skipping the XML declaration; pure.
#[derive(Default)]
struct HeaderScanner {
    /// Bytes of the start tag (from `<` to `>`).
    tag: Vec<u8>,
    state: ScanState,
    total: usize,
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum ScanState {
    #[default]
    Before,
    Open,
    Decl,
    DeclQuestion,
    Tag,
    Quoted(u8),
}

impl HeaderScanner {
    /// Consumes bytes up to the end of the start tag; returns `(used, done)`.
    fn feed(&mut self, buf: &[u8]) -> Result<(usize, bool), HeaderError> {
        for (i, &b) in buf.iter().enumerate() {
            self.total += 1;
            if self.total > MAX_HEADER_BYTES {
                return Err(HeaderError::Malformed);
            }
            self.state = match (self.state, b) {
                (ScanState::Before, b) if b.is_ascii_whitespace() => ScanState::Before,
                (ScanState::Before, b'<') => ScanState::Open,
                (ScanState::Before, _) => return Err(HeaderError::Malformed),
                (ScanState::Open, b'?') => ScanState::Decl,
                (ScanState::Open, b'!' | b'/' | b'>') => return Err(HeaderError::Malformed),
                (ScanState::Open, b) => {
                    self.tag.extend_from_slice(&[b'<', b]);
                    ScanState::Tag
                }
                (ScanState::Decl, b'?') => ScanState::DeclQuestion,
                (ScanState::Decl, _) => ScanState::Decl,
                (ScanState::DeclQuestion, b'>') => ScanState::Before,
                (ScanState::DeclQuestion, b'?') => ScanState::DeclQuestion,
                (ScanState::DeclQuestion, _) => ScanState::Decl,
                (ScanState::Tag, b'>') => {
                    self.tag.push(b);
                    return Ok((i + 1, true));
                }
                (ScanState::Tag, q @ (b'"' | b'\'')) => {
                    self.tag.push(q);
                    ScanState::Quoted(q)
                }
                (ScanState::Tag, b) => {
                    self.tag.push(b);
                    ScanState::Tag
                }
                (ScanState::Quoted(q), b) => {
                    self.tag.push(b);
                    if b == q {
                        ScanState::Tag
                    } else {
                        ScanState::Quoted(q)
                    }
                }
            };
        }
        Ok((buf.len(), false))
    }
}

fn parse_header(tag: &[u8]) -> Result<PeerHeader, HeaderError> {
    let tag = std::str::from_utf8(tag).map_err(|_| HeaderError::Malformed)?;
    if tag.ends_with("/>") {
        return Err(HeaderError::Malformed);
    }
    let qname: String = tag
        .chars()
        .skip(1)
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    let Some((prefix, "stream")) = qname.split_once(':') else {
        return Err(HeaderError::BadNamespace);
    };
    let root: Element = format!("{tag}</{qname}>")
        .parse()
        .map_err(|_| HeaderError::Malformed)?;
    if root.name() != "stream" || root.ns() != NS_STREAM {
        return Err(HeaderError::BadNamespace);
    }
    // A probe child reveals the default namespace the header declares (none: refused).
    let probe: Element = format!("{tag}<probe/></{qname}>")
        .parse()
        .map_err(|_| HeaderError::BadNamespace)?;
    let default_ns = probe.children().next().map(Element::ns).unwrap_or_default();
    let replay = format!(
        "<{prefix}:stream xmlns:{prefix}='{NS_STREAM}' xmlns='{}' version='1.0'>",
        escape_attr(&default_ns)
    );
    Ok(PeerHeader {
        to: root.attr("to").map(str::to_owned),
        replay,
    })
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// The socket as tokio-xmpp sees it: first the replayed header, then the peer's bytes,
/// counting how many bytes the parser consumed since the last complete element.
pub(crate) struct ReplayIo {
    prefix: Vec<u8>,
    pos: usize,
    inner: BufStream<TcpStream>,
    used: Cell<usize>,
    limit: usize,
    over: Cell<bool>,
}

impl ReplayIo {
    pub(crate) fn new(prefix: Vec<u8>, inner: BufStream<TcpStream>, limit: usize) -> ReplayIo {
        ReplayIo {
            prefix,
            pos: 0,
            inner,
            used: Cell::new(0),
            limit,
            over: Cell::new(false),
        }
    }

    /// Called after each complete element.
    pub(crate) fn reset_budget(&self) {
        self.used.set(0);
    }

    pub(crate) fn over_budget(&self) -> bool {
        self.over.get()
    }
}

impl AsyncRead for ReplayIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = match self.as_mut().poll_fill_buf(cx) {
            Poll::Ready(Ok(bytes)) => bytes,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncBufRead for ReplayIo {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.used.get() > this.limit {
            this.over.set(true);
            let e = io::Error::new(io::ErrorKind::InvalidData, "stanza size limit exceeded");
            return Poll::Ready(Err(e));
        }
        if this.pos < this.prefix.len() {
            return Poll::Ready(Ok(&this.prefix[this.pos..]));
        }
        Pin::new(&mut this.inner).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            this.pos = (this.pos + amt).min(this.prefix.len());
        } else {
            this.used.set(this.used.get().saturating_add(amt));
            Pin::new(&mut this.inner).consume(amt);
        }
    }
}

impl AsyncWrite for ReplayIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
