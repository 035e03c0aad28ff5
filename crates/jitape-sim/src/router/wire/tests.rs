//! Unit tests of `wire`.

use super::*;

fn scan(input: &[u8]) -> Result<(usize, bool, Vec<u8>), HeaderError> {
    let mut s = HeaderScanner::default();
    let (used, done) = s.feed(input)?;
    Ok((used, done, s.tag))
}

#[test]
fn scanner_stops_right_after_the_start_tag() {
    let input = b"<?xml version='1.0'?>\n<stream:stream to='a.b' x=\"1>2\" xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'><handshake>";
    let (used, done, tag) = scan(input).expect("scans");
    assert!(done);
    assert_eq!(&input[used..], b"<handshake>");
    assert!(tag.starts_with(b"<stream:stream"));
    assert!(tag.ends_with(b"'>"));
}

#[test]
fn scanner_handles_split_input_and_rejects_garbage() {
    let mut s = HeaderScanner::default();
    assert_eq!(s.feed(b"<stream:str").ok(), Some((11, false)));
    assert_eq!(s.feed(b"eam>rest").ok(), Some((4, true)));
    assert!(scan(b"hello").is_err());
    assert!(scan(b"<!DOCTYPE x>").is_err());
    let huge = vec![b' '; MAX_HEADER_BYTES + 1];
    assert!(scan(&huge).is_err());
}

#[test]
fn header_parse_finds_to_and_default_namespace() {
    let tag = b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' to='c.example' extra='1'>";
    let h = parse_header(tag).expect("parses");
    assert_eq!(h.to.as_deref(), Some("c.example"));
    assert!(h.replay.contains("xmlns='jabber:component:accept'"));
    assert!(h.replay.starts_with("<s:stream"));
    assert!(!h.replay.contains("extra"));
    let wrong_ns = b"<stream:stream xmlns:stream='urn:other' to='c'>";
    assert!(matches!(
        parse_header(wrong_ns),
        Err(HeaderError::BadNamespace)
    ));
    assert!(matches!(
        parse_header(b"<stream:stream/>"),
        Err(HeaderError::Malformed)
    ));
}
