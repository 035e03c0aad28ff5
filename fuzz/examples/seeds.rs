//! Writes the committed seed corpus, `fuzz/corpus/<target>/seed-*`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds [target…]` (from the repository
//! root; all targets without names).
//!
//! In: the reference stanzas (`crates/jitape/src/jingle/fixtures/`, and `01-muc-join-and-disco.xml` from the
//! shared reference when present), jitape's own FLAC writer, sidecar writer and Opus voices.
//! Out: a few small files per target, in the encodings the targets decode.

use std::fs;
use std::path::{Path, PathBuf};

use jitape_sim::voice::Voice;
use jitape::sink::flac::{FlacWriter, FlacSettings};
use jitape::sink::sidecar::{self, GapKind, Sidecar};
use jitape_sim::fuzz::machine_ops::{self, Op};
use jitape_sim::fuzz::room::{DOMAIN, MUC, NS, ROOM, US};
use jitape_sim::fuzz::timeline_ops::{self, Op as TOp};
use minidom::Element;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
}

fn strip_comments(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("-->").map_or(rest.len(), |e| start + e + 3);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("<?xml"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The stanzas of a reference file, in the component namespace.
fn stanzas(path: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let xml = strip_comments(&text)
        .replace("jabber:client", NS)
        .replacen("<stanzas>", "<stanzas xmlns='urn:jitape:seeds'>", 1);
    let root: Element = xml.parse().expect("reference file parses");
    root.children().map(compact).collect()
}

/// Serialised without the indentation's whitespace text.
fn compact(el: &Element) -> String {
    let mut out = Vec::new();
    strip_ws(el).write_to(&mut out).expect("serialises");
    String::from_utf8(out).expect("utf-8")
}

fn strip_ws(el: &Element) -> Element {
    let mut b = Element::builder(el.name(), el.ns());
    for ((ns, name), value) in el.attrs().iter() {
        b = b.attr_ns(ns.clone(), name.clone(), value.clone());
    }
    for node in el.nodes() {
        match node {
            minidom::Node::Element(child) => b = b.append(strip_ws(child)),
            minidom::Node::Text(t) if !t.trim().is_empty() => b = b.append(t.as_str()),
            minidom::Node::Text(_) => {}
        }
    }
    b.build()
}

fn xml_seeds() {
    let fixtures = root().join("../crates/jitape/src/jingle/fixtures");
    let mut files: Vec<PathBuf> = fs::read_dir(&fixtures)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.push(PathBuf::from(
        "/work/shared/reference/jingle/01-muc-join-and-disco.xml",
    ));
    files.sort();
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("x")[..2].to_string();
        for (i, s) in stanzas(&f).iter().enumerate() {
            put("stanza", &format!("{stem}-{i}"), s.as_bytes());
            let el: Element = s.parse().expect("stanza reparses");
            if let Some(j) = el.get_child("jingle", jitape::jingle::ns::JINGLE) {
                put("jingle", &format!("{stem}-{i}"), compact(j).as_bytes());
            }
        }
    }
    let extra = [
        ("ghost", format!(r#"<presence xmlns="{NS}" from="{ROOM}/a1b2c3d4" to="rec@{DOMAIN}/old1"/>"#)),
        ("module", format!(r#"<message xmlns="{NS}" from="{MUC}" to="{DOMAIN}"><event xmlns="urn:jitape:prosody:1" type="occupant-joined" room="{ROOM}"><occupant nick="a1b2c3d4" jid="u@meet.jitsi/x"/></event></message>"#)),
        ("invite", format!(r#"<message xmlns="{NS}" from="u@meet.jitsi/x" to="{DOMAIN}"><x xmlns="jabber:x:conference" jid="{ROOM}"/></message>"#)),
        ("catchup", format!(r#"<iq xmlns="{NS}" type="result" id="jitape-catchup-1" from="{MUC}" to="{DOMAIN}"><rooms xmlns="urn:jitape:prosody:1"><room jid="{ROOM}"><occupant nick="a1b2c3d4"/></room></rooms></iq>"#)),
        ("tenant-presence", format!(r#"<presence xmlns="{NS}" from="weeklysync@muc.acme.meet.jitsi/a1b2c3d4" to="{US}"><x xmlns="http://jabber.org/protocol/muc#user"><status code="110"/></x></presence>"#)),
        ("tenant-invite", format!(r#"<message xmlns="{NS}" from="u@meet.jitsi/x" to="{DOMAIN}"><x xmlns="jabber:x:conference" jid="weeklysync@muc.acme.meet.jitsi"/></message>"#)),
        ("ping", format!(r#"<iq xmlns="{NS}" type="get" id="p1" from="{ROOM}/focus" to="{US}"><ping xmlns="urn:xmpp:ping"/></iq>"#)),
    ];
    for (name, xml) in extra {
        put("stanza", name, xml.as_bytes());
    }
}

fn machine_seeds() {
    use Op::*;
    let js = |action, sid, sources: &[(u32, u8)]| Jingle {
        from: 1,
        id: 7,
        action,
        sid,
        shape: 0,
        sources: sources.to_vec(),
    };
    let join = vec![
        RoomStatus { alive: true, humans: 255 },
        LinkUp,
        Presence { who: 1, kind: 0, extra: 0 },
        Presence { who: 2, kind: 0, extra: 0 },
        Presence { who: 0, kind: 0, extra: 0 },
        js(0, 1, &[(11, 2), (12, 3), (13, 6)]),
        MediaReady { sid: 0x80 },
        RecordingStarted { elapsed_s: 0 },
        Tick { ms: 500, seconds: false },
        Presence { who: 3, kind: 0, extra: 0 },
        js(2, 0x80, &[(14, 3)]),
        Answer { which: 0, error: false, condition: 0 },
        Tick { ms: 20, seconds: true },
    ];
    let scenarios: Vec<(&str, bool, Vec<Op>)> = vec![
        ("join-session", false, join),
        ("leave-kick-rejoin", true, vec![
            Presence { who: 2, kind: 1, extra: 0 },
            Presence { who: 0, kind: 2, extra: 0 },
            Tick { ms: 2, seconds: true },
            Presence { who: 0, kind: 0, extra: 0 },
            js(0, 2, &[(21, 3)]),
            MediaReady { sid: 2 },
        ]),
        ("media-failed", true, vec![
            MediaFailed { sid: 0x80 },
            Answer { which: 1, error: true, condition: 2 },
            Tick { ms: 3, seconds: true },
            Tick { ms: 20, seconds: true },
            Presence { who: 0, kind: 0, extra: 0 },
        ]),
        ("refused", false, vec![
            RoomStatus { alive: true, humans: 2 },
            LinkUp,
            Presence { who: 0, kind: 5, extra: 4 },
            Tick { ms: 3, seconds: true },
            Presence { who: 0, kind: 5, extra: 5 },
            Tick { ms: 20, seconds: true },
        ]),
        ("reconnect", true, vec![
            LinkDown,
            Tick { ms: 2, seconds: true },
            LinkUp,
            RoomStatus { alive: true, humans: 1 },
            Presence { who: 0, kind: 1, extra: 0 },
            Presence { who: 0, kind: 0, extra: 0 },
            Tick { ms: 16, seconds: true },
        ]),
        ("terminate-replace-destroy", true, vec![
            js(4, 0x80, &[]),
            js(0, 3, &[(31, 2)]),
            js(1, 3, &[(32, 3)]),
            MediaReady { sid: 3 },
            Jingle { from: 2, id: 9, action: 0, sid: 1, shape: 0, sources: vec![] },
            Presence { who: 0, kind: 4, extra: 0 },
            Tick { ms: 1, seconds: true },
        ]),
        ("empty-grace", true, vec![
            Presence { who: 2, kind: 1, extra: 0 },
            Presence { who: 3, kind: 1, extra: 0 },
            Tick { ms: 299, seconds: true },
            Presence { who: 5, kind: 6, extra: 0 },
            Tick { ms: 2, seconds: true },
        ]),
        ("odd-iqs", true, vec![
            Iq { from: 1, kind: 0 },
            Iq { from: 2, kind: 3 },
            Iq { from: 1, kind: 4 },
            Iq { from: 1, kind: 5 },
            Message { from: 2, kind: 2 },
            Jingle { from: 1, id: 0, action: 18, sid: 0x80, shape: 2, sources: vec![(0, 2)] },
            Jingle { from: 1, id: 3, action: 0, sid: 2, shape: 2, sources: vec![] },
            Stop { reason: 0 },
        ]),
    ];
    for (name, in_session, ops) in scenarios {
        put("machine", name, &machine_ops::encode(in_session, &ops));
    }
}

fn timeline_seeds() {
    let voice = Voice::tone(440.0, 0.5).expect("voice");
    let other = Voice::tone(660.0, 0.3).expect("voice");
    let push = |ssrc: u8, k: u16, v: &Voice, jitter: i16| TOp::Push {
        ssrc,
        seq: 1000 + k,
        ts: 960 * u32::from(k),
        pt: 0,
        marker: k == 0,
        arrival_ms: jitter,
        payload: v.frame(usize::from(k)).opus.to_vec(),
    };
    let mut talk = vec![TOp::Map { ssrc: 0, track: 0 }, TOp::Map { ssrc: 1, track: 1 }];
    for k in 0..12u16 {
        talk.push(push(0, k, &voice, 0));
        if k % 3 != 1 {
            talk.push(push(1, k, &other, (k as i16 % 4) * 7 - 10));
        }
        talk.push(TOp::Render { ms: 20 });
    }
    talk.extend([TOp::Render { ms: 400 }, TOp::FinishSpeech]);
    put("timeline", "two-speakers", &timeline_ops::encode(0, true, 0, &talk));
    let mut gaps = vec![TOp::Map { ssrc: 2, track: 3 }];
    for k in [0u16, 1, 1, 5, 3, 9] {
        gaps.push(push(2, k, &voice, 40));
    }
    gaps.extend([
        TOp::Render { ms: 250 },
        TOp::Unmap { ssrc: 2 },
        TOp::Skip { samples: 16_000 },
        TOp::Render { ms: 999 },
        TOp::Map { ssrc: 2, track: 4 },
        push(2, 40, &voice, -300),
        TOp::Render { ms: 300 },
    ]);
    put("timeline", "loss-reorder-skip", &timeline_ops::encode(2, false, 48_000, &gaps));
}

fn flac_seeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, rate, block, samples, finalize) in [
        ("partial-8k", 8_000, 64u16, 300usize, false),
        ("partial-48k", 48_000, 128, 700, false),
        ("final-16k", 16_000, 64, 200, true),
    ] {
        let path = dir.path().join(format!("{name}.flac"));
        let opts = FlacSettings {
            block_size: block,
            ..FlacSettings::default()
        };
        let mut w = FlacWriter::create_with(&path, rate, opts).expect("writer");
        let pcm: Vec<i16> = (0..samples)
            .map(|i| (((i as f32) * 0.07).sin() * 3000.0) as i16)
            .collect();
        w.write(&pcm).expect("write");
        w.flush().expect("flush");
        let bytes = if finalize {
            let done = w.finalize().expect("finalize");
            fs::read(done.path).expect("read")
        } else {
            let b = fs::read(w.path()).expect("read");
            drop(w);
            b
        };
        put("flac_repair", name, &bytes);
        if !finalize {
            put("flac_repair", &format!("{name}-torn"), &bytes[..bytes.len() - 7]);
        }
    }
}

fn sidecar_seeds() {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-21T19:35:09Z")
        .expect("time")
        .to_utc();
    let mut sc = Sidecar::new(ROOM, "weeklysync@muc.meet.jitsi", "20261121T193509Z.flac", 1_000, start);
    let p = sc.participant_mut("id:u1");
    p.nicks.push("a1b2c3d4".into());
    p.display_name = Some("Alice".into());
    sc.add_gap(1_000, 1_500, GapKind::XmppReconnect, Some("link down".into()));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.json");
    sidecar::write_atomic(&path, &sc).expect("write");
    put("sidecar", "recording", &fs::read(&path).expect("read"));
    sc.finish(2_000, "room-destroyed");
    sidecar::write_atomic(&path, &sc).expect("write");
    put("sidecar", "final", &fs::read(&path).expect("read"));
}

/// The `wire` target's input: `[mode, stanza, depth, n, size × n, rest…]` (see
/// `jitape_sim::fuzz::wire`).
fn wire_input(structured: bool, stanza: u8, depth: u8, sizes: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::from(structured), stanza, depth, (sizes.len() as u8).saturating_sub(1)];
    v.extend_from_slice(sizes);
    v.extend_from_slice(rest);
    v
}

fn wire_seeds() {
    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='recorder.meet.jitsi' id='a1b2-c3'>";
    let raw = [
        ("raw-stanzas", format!("{HEADER}\n<presence from='r@c/a' to='x'><x xmlns='http://jabber.org/protocol/muc#user'/></presence>\n \t<iq type='result' id='p1'/>  <message a='1&gt;0' b=\"x/>y\" c='<not a tag>'><body>a &lt; b &amp;&amp; c > d</body></message><iq type='set' id='j'><!-- a comment with <tags> and -- dashes --><x/><![CDATA[<raw> ]] ]>]]><?pi x?></iq></stream:stream>")),
        ("raw-between", format!("{HEADER}<!-- hello --><?x y?><iq id='1'/><![CDATA[junk]]><iq id='2'/>")),
        ("raw-large", format!("{HEADER}<presence id='big'><junk v='{}'/></presence><iq type='get' id='after'/>", "A".repeat(300))),
        ("raw-deep", format!("{HEADER}<message id='d'>{}{}</message><message id='ok'><a><b/></a></message>", "<a>".repeat(12), "</a>".repeat(12))),
    ];
    for (name, text) in raw {
        put("wire", name, &wire_input(false, 12, 5, &[1, 7, 64], text.as_bytes()));
    }
    // (name, stanza size limit, depth limit, chunk sizes, generator script)
    type Script<'a> = (&'a str, u8, u8, &'a [u8], &'a [u8]);
    let scripts: [Script; 3] = [
        ("gen-small", 40, 3, &[3, 17], &[1, 0, 2, 1, 3, 0, 1, 2, 0, 3, 4, 6, 7, 8, 1, 2, 2, 1, 0, 3, 3, 0, 1, 0]),
        ("gen-nested", 250, 2, &[5], &[0, 1, 3, 2, 3, 0, 2, 3, 1, 2, 3, 0, 0, 1, 1, 5, 4, 6, 0, 0, 0]),
        ("gen-tiny-limit", 0, 1, &[2, 9, 200], &[1, 2, 1, 3, 3, 3, 0, 0, 4, 2, 9, 0, 1, 1]),
    ];
    for (name, stanza, depth, sizes, script) in scripts {
        put("wire", name, &wire_input(true, stanza, depth, sizes, script));
    }
}

/// `cargo run --example seeds [target…]`: the seeds of the named targets (all by default).
fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let want = |t: &str| only.is_empty() || only.iter().any(|o| o == t);
    if want("stanza") || want("jingle") {
        xml_seeds();
    }
    if want("machine") {
        machine_seeds();
    }
    if want("timeline") {
        timeline_seeds();
    }
    if want("flac_repair") {
        flac_seeds();
    }
    if want("sidecar") {
        sidecar_seeds();
    }
    if want("wire") {
        wire_seeds();
    }
    println!("seeds written under {}", root().join("corpus").display());
}
