//! Unit tests of `offer`.

use super::*;
use crate::bridge::{RED_PT, RedSend, Wire};
use jitape::jingle::model::{Ignored, Protocol};
use jitape::jingle::{self, parse};

fn source(ssrc: u32, owner: &str) -> Source {
    Source {
        ssrc: jitape::types::Ssrc(ssrc),
        name: Some(format!("{owner}-a0")),
        owner: owner.into(),
        msid: Some(format!("{owner}-audio-0-1 t")),
    }
}

#[test]
fn a_decorated_offer_carries_every_variant_and_parses() {
    let v = OfferVariants {
        red_distance: Some(2),
        translations: vec!["es".into(), "fr".into()],
        extras: true,
    };
    let jvb = Source {
        ssrc: jitape::types::Ssrc(9),
        name: Some("jvb-a0".into()),
        owner: "jvb".into(),
        msid: Some("mixedmslabel mixedlabelaudio0".into()),
    };
    let mut sources = vec![jvb, source(1, "a"), source(2, "b")];
    let mut next = 100;
    let synthetic = synthetic_sources(&sources, &v, || {
        next += 1;
        next
    });
    assert_eq!(synthetic.len(), 4);
    assert_eq!(synthetic[1].name.as_deref(), Some("a-a0.fr"));
    sources.extend(synthetic);
    let wire = Wire {
        red: Some(RedSend {
            pt: RED_PT,
            distance: 2,
        }),
        ..Wire::default()
    };
    let offer = jitape::jingle::model::AudioOffer {
        content_name: "audio".into(),
        description: crate::bridge::jicofo_description(&wire),
        transport: jitape::jingle::model::IceTransport {
            ufrag: "u".into(),
            pwd: "p".into(),
            rtcp_mux: true,
            ..Default::default()
        },
    };
    let bs = jitape::jingle::model::BridgeSession {
        id: "b".into(),
        ..Default::default()
    };
    for json in [false, true] {
        let el = jingle::session_initiate("s", "focus", &offer, &sources, &bs, json);
        let el = decorate(el, &v);
        let text = String::from_utf8({
            let mut out = Vec::new();
            el.write_to(&mut out).expect("serialises");
            out
        })
        .expect("utf-8");
        for needle in [
            "ssltcp",
            "traceparent",
            "startmuted",
            "future-thing",
            "transport-cc",
            "<parameter value='111/111'/>",
        ] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        let j = parse(&el).expect("jitape takes it");
        let d = &j.audio.as_ref().expect("audio").description;
        assert_eq!(
            (d.red().map(|r| r.id), d.payload_types[0].id),
            (Some(RED_PT), RED_PT)
        );
        assert_eq!(d.header_extensions.len(), 3);
        let t = &j.audio.as_ref().expect("audio").transport;
        assert_eq!(t.candidates.last().map(|c| c.protocol), Some(Protocol::Tcp));
        let media: Vec<u32> = j.media_sources().map(|s| s.ssrc.0).collect();
        assert_eq!(media, [1, 2]);
        let synthetic = j
            .sources
            .iter()
            .filter(|s| j.ignored(s) == Some(Ignored::Synthetic));
        assert_eq!(synthetic.count(), 4);
    }
}
