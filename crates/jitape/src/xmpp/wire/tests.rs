use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='recorder.meet.jitsi' id='a1b2-c3'>";

fn limits(max_stanza: usize, max_depth: usize) -> WireLimits {
    WireLimits {
        max_stanza,
        max_depth,
    }
}

/// Split `input` fed in chunks of `chunk` bytes.
fn split(input: &[u8], chunk: usize, l: WireLimits) -> Vec<Frame> {
    let mut s = Splitter::new(l);
    let mut out = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        s.push(part, &mut out);
    }
    out
}

fn stanzas(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Stanza(b) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn header_stanzas_keepalives_and_footer_come_out_whole_at_any_chunking() {
    let body = [
        "<presence from='r@c/a' to='x'><x xmlns='http://jabber.org/protocol/muc#user'/></presence>",
        "<iq type='result' id='p1'/>",
        "<message a='1&gt;0' b=\"x/>y\" c='<not a tag>'><body>a &lt; b &amp;&amp; c > d</body></message>",
        "<iq type='set' id='j'><!-- a comment with <tags> and -- dashes --><x/><![CDATA[<raw> ]] ]>]]><?pi x?></iq>",
    ];
    let input = format!(
        "{HEADER}\n{}\n \t{}  {}{}</stream:stream>",
        body[0], body[1], body[2], body[3]
    );
    for chunk in [1, 2, 3, 7, 64, 100_000] {
        let frames = split(input.as_bytes(), chunk, WireLimits::default());
        assert_eq!(
            frames.first(),
            Some(&Frame::Header(HEADER.as_bytes().to_vec())),
            "chunk {chunk}"
        );
        assert_eq!(stanzas(&frames), body, "chunk {chunk}");
        assert_eq!(frames.last(), Some(&Frame::Footer), "chunk {chunk}");
        assert_eq!(frames.len(), 6);
    }
}

#[test]
fn comments_and_instructions_between_stanzas_are_dropped() {
    let input = format!("{HEADER}<!-- hello --><?x y?><iq id='1'/><![CDATA[junk]]><iq id='2'/>");
    let frames = split(input.as_bytes(), 5, WireLimits::default());
    assert_eq!(stanzas(&frames), ["<iq id='1'/>", "<iq id='2'/>"]);
}

#[test]
fn an_oversized_stanza_is_skipped_with_its_head_and_the_next_one_survives() {
    let big = format!(
        "<presence from='room@conference.meet.jitsi/mallory' type='x' id='big'><junk v='{}'/></presence>",
        "A".repeat(5000)
    );
    let input = format!("{HEADER}{big}<iq type='get' id='after'/>");
    for chunk in [1, 13, 4096] {
        let frames = split(input.as_bytes(), chunk, limits(1000, 32));
        let Frame::Skipped { size, reason, head } = &frames[1] else {
            panic!("{frames:?}")
        };
        assert_eq!(*size, big.len());
        assert_eq!(*reason, SkipReason::TooLarge);
        let head = head.as_ref().expect("the opening tag fitted");
        let el = parse_head(HEADER.as_bytes(), head).unwrap();
        assert_eq!(el.name(), "presence");
        assert_eq!(el.attr("from"), Some("room@conference.meet.jitsi/mallory"));
        assert_eq!(el.attr("id"), Some("big"));
        assert_eq!(stanzas(&frames), ["<iq type='get' id='after'/>"]);
    }
}

#[test]
fn a_stanza_whose_opening_tag_alone_is_too_large_has_no_head() {
    let input = format!("{HEADER}<iq id='{}'/><iq id='ok'/>", "x".repeat(2000));
    let frames = split(input.as_bytes(), 100, limits(1000, 32));
    assert!(matches!(
        frames[1],
        Frame::Skipped {
            reason: SkipReason::TooLarge,
            head: None,
            ..
        }
    ));
    assert_eq!(stanzas(&frames), ["<iq id='ok'/>"]);
}

#[test]
fn a_too_deep_stanza_is_skipped_and_the_stream_goes_on() {
    let deep = format!(
        "<message id='d'>{}{}</message>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    let ok = format!(
        "<message id='ok'>{}{}</message>",
        "<a>".repeat(7),
        "</a>".repeat(7)
    );
    let input = format!("{HEADER}{deep}{ok}");
    let frames = split(input.as_bytes(), 9, limits(1 << 20, 8));
    assert!(matches!(
        &frames[1],
        Frame::Skipped { reason: SkipReason::TooDeep, head: Some(h), .. } if h == b"<message id='d'>"
    ));
    assert_eq!(stanzas(&frames), [ok]);
}

#[test]
fn an_empty_element_one_level_too_deep_is_too_deep_as_well() {
    // With a depth of 2 allowed: the stanza and its children; a grandchild is one too many,
    // empty or not (found by the `wire` fuzz target: `<b/>` used to pass).
    for (stanza, ok) in [
        ("<message id='1'><a><b/></a></message>", false),
        ("<message id='2'><a><b></b></a></message>", false),
        ("<message id='3'><a/><a></a></message>", true),
        ("<iq id='4'/>", true),
    ] {
        let input = format!("{HEADER}{stanza}");
        let frames = split(input.as_bytes(), 3, limits(1 << 20, 2));
        if ok {
            assert_eq!(stanzas(&frames), [stanza]);
        } else {
            assert!(
                matches!(
                    &frames[1],
                    Frame::Skipped {
                        reason: SkipReason::TooDeep,
                        ..
                    }
                ),
                "{stanza}: {frames:?}"
            );
        }
    }
    // The stanza itself may be empty at the smallest limit.
    let frames = split(format!("{HEADER}<iq id='5'/>").as_bytes(), 1, limits(64, 1));
    assert_eq!(stanzas(&frames), ["<iq id='5'/>"]);
}

#[test]
fn a_million_nested_elements_cost_no_memory_and_no_stack() {
    let mut s = Splitter::new(limits(1 << 20, 32));
    let mut out = Vec::new();
    s.push(HEADER.as_bytes(), &mut out);
    s.push(b"<m>", &mut out);
    for _ in 0..1_000_000 {
        s.push(b"<a>", &mut out);
    }
    for _ in 0..1_000_000 {
        s.push(b"</a>", &mut out);
    }
    s.push(b"</m><iq id='next'/>", &mut out);
    assert!(matches!(
        out[1],
        Frame::Skipped {
            reason: SkipReason::TooDeep,
            ..
        }
    ));
    assert_eq!(stanzas(&out), ["<iq id='next'/>"]);
}

#[test]
fn stanzas_parse_in_the_stream_namespaces_with_long_attributes() {
    let long = "v".repeat(20_000);
    let st = format!(
        "<presence from='r@c/n'><nick xmlns='http://jabber.org/protocol/nick' x='{long}'>N</nick></presence>"
    );
    let el = parse_stanza(HEADER.as_bytes(), st.as_bytes(), 1 << 20).unwrap();
    assert_eq!(el.name(), "presence");
    assert_eq!(el.ns(), "jabber:component:accept");
    let nick = el.children().next().unwrap();
    assert_eq!(nick.ns(), "http://jabber.org/protocol/nick");
    assert_eq!(nick.attr("x").map(str::len), Some(20_000));
    let err = parse_stanza(
        HEADER.as_bytes(),
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        4096,
    )
    .unwrap();
    assert_eq!(err.ns(), "http://etherx.jabber.org/streams");
}

#[test]
fn a_malformed_stanza_fails_alone() {
    for bad in [
        &b"<iq><a></b></iq>"[..],
        b"<iq><p:a/></iq>",
        b"<iq>&undefined;</iq>",
        b"<iq>\xff\xfe</iq>",
        b"<iq",
    ] {
        assert!(
            parse_stanza(HEADER.as_bytes(), bad, 4096).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(parse_stanza(HEADER.as_bytes(), b"<iq id='fine'/>", 4096).is_ok());
}

#[test]
fn the_stream_id_comes_from_the_header() {
    assert_eq!(
        header_attr(HEADER.as_bytes(), "id").as_deref(),
        Some("a1b2-c3")
    );
    let bare = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='z'>";
    assert_eq!(header_attr(bare, "id").as_deref(), Some("z"));
    assert_eq!(header_attr(b"<stream:stream>", "id"), None);
}

#[test]
fn a_stream_closed_by_the_server_before_any_stanza_is_a_footer() {
    let frames = split(
        format!("{HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").as_bytes(),
        3,
        WireLimits::default(),
    );
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2], Frame::Footer);
}

#[test]
fn standalone_elements_parse_with_a_chosen_token_bound() {
    let long = format!("<a xmlns='urn:x' v='{}'/>", "z".repeat(100_000));
    assert!(
        long.parse::<Element>().is_err(),
        "minidom alone stops at 8 KiB"
    );
    let el = parse_element(long.as_bytes(), 1 << 20).unwrap();
    assert_eq!(el.attr("v").map(str::len), Some(100_000));
    assert!(parse_element(long.as_bytes(), 50_000).is_err());
    assert!(parse_element(b"<a xmlns='urn:x'>", 1024).is_err());
}
