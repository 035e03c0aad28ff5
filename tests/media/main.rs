//! Loopback tests of the media stage against the simulated bridge: real ICE, DTLS and SRTP
//! on 127.0.0.1, no XMPP. Every test is bounded by a timeout.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use jitape::jingle::model::{AudioOffer, Source};
use jitape::media::{MediaError, MediaEvent, MediaSession, MediaSettings, MediaState, RtpPacket};
use jitape::types::Ssrc;
use jitape_sim::bridge::{BridgeConfig, SimBridge, SpeakerScript, TalkWindow, Wire};
use jitape_sim::netem::NetemConfig;
use jitape_sim::voice::{Voice, decode, default_tone_hz, dominant};

mod red;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn media_cfg() -> MediaSettings {
    MediaSettings {
        bind: LOCALHOST,
        advertise: vec![],
        ice_disconnected_timeout: Duration::from_millis(1000),
        ice_failed_timeout: Duration::from_millis(1500),
        ice_keepalive_interval: Duration::from_millis(300),
        gather_timeout: Duration::from_secs(5),
        recv_buffer: 1 << 20,
        silence_timeout: Duration::from_secs(60),
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn window(start: u64, end: u64) -> TalkWindow {
    TalkWindow {
        start: ms(start),
        end: ms(end),
    }
}

fn speaker(i: usize, windows: Vec<TalkWindow>) -> SpeakerScript {
    SpeakerScript {
        endpoint: format!("ep{i}"),
        voice: Arc::new(Voice::tone(default_tone_hz(i), 0.3).expect("tone")),
        windows,
    }
}

/// A connected bridge + media session pair.
struct Loop {
    bridge: SimBridge,
    session: MediaSession,
    rx: mpsc::Receiver<MediaEvent>,
    sources: Vec<Source>,
    offer: AudioOffer,
}

async fn connect(cfg: BridgeConfig, speakers: Vec<SpeakerScript>, capacity: usize) -> Loop {
    let (mut bridge, offer, sources) = SimBridge::allocate(cfg, speakers).await.expect("allocate");
    let (tx, mut rx) = mpsc::channel(capacity);
    let (session, transport) = MediaSession::start(&media_cfg(), &offer, &sources, tx)
        .await
        .expect("media session");
    bridge.accept(&transport).await.expect("accept");
    bridge.connected(ms(5000)).await.expect("bridge connects");
    let connected = tokio::time::timeout(ms(5000), async {
        while let Some(event) = rx.recv().await {
            if event == MediaEvent::State(MediaState::Connected) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(connected, Ok(true), "media session reports Connected");
    Loop {
        bridge,
        session,
        rx,
        sources,
        offer,
    }
}

/// Everything that arrives until `until`.
async fn collect(
    rx: &mut mpsc::Receiver<MediaEvent>,
    until: Instant,
) -> (Vec<RtpPacket>, Vec<MediaState>) {
    let (mut packets, mut states) = (Vec::new(), Vec::new());
    while let Ok(Some(event)) = tokio::time::timeout_at(until.into(), rx.recv()).await {
        match event {
            MediaEvent::Rtp(p) => packets.push(p),
            MediaEvent::State(s) => states.push(s),
        }
    }
    (packets, states)
}

fn by_ssrc(packets: &[RtpPacket]) -> BTreeMap<Ssrc, Vec<&RtpPacket>> {
    let mut map: BTreeMap<Ssrc, Vec<&RtpPacket>> = BTreeMap::new();
    for p in packets {
        map.entry(p.ssrc).or_default().push(p);
    }
    map
}

fn media_ssrcs(sources: &[Source]) -> HashSet<Ssrc> {
    sources
        .iter()
        .filter(|s| !s.is_bridge())
        .map(|s| s.ssrc)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_speakers_arrive_with_their_ssrcs_payloads_and_levels() {
    let scripts = vec![
        speaker(0, vec![window(0, 400)]),
        speaker(1, vec![window(200, 600)]),
        speaker(2, vec![window(400, 800)]),
    ];
    let voices: Vec<Arc<Voice>> = scripts.iter().map(|s| Arc::clone(&s.voice)).collect();
    let mut l = connect(BridgeConfig::default(), scripts, 4096).await;
    let epoch = Instant::now() + ms(200);
    l.bridge.start(epoch).expect("start");
    let (packets, _) = collect(&mut l.rx, epoch + ms(1100)).await;
    let sent = l.bridge.sent().await;

    let got = by_ssrc(&packets);
    let keys: HashSet<Ssrc> = got.keys().copied().collect();
    assert_eq!(keys, media_ssrcs(&l.sources), "exactly the announced SSRCs");
    for (i, voice) in voices.iter().enumerate() {
        let endpoint = format!("ep{i}");
        let src = l
            .sources
            .iter()
            .find(|s| s.owner == endpoint)
            .expect("source");
        let log = sent.speaker(&endpoint).expect("sent log");
        let rx = got.get(&src.ssrc).expect("received");
        let w = &log.windows[0];
        assert_eq!(rx.len(), w.packets as usize);
        assert_eq!(rx.len(), 20);
        for (n, p) in rx.iter().enumerate() {
            let frame = voice.frame(n);
            assert_eq!(p.sequence, w.first_seq.wrapping_add(n as u16));
            assert_eq!(p.payload, frame.opus.as_ref(), "payload {n} of {endpoint}");
            assert_eq!(p.audio_level, Some(frame.level));
            assert_eq!(p.voice, Some(true));
            assert_eq!(
                p.payload_type,
                l.offer.description.opus().map(|o| o.id).unwrap_or(0)
            );
            assert_eq!(p.marker, n == 0);
            let start = epoch + voices_window_start(i);
            assert!(p.arrival >= start, "arrival before the window was sent");
            assert!(p.arrival < start + ms(1000), "arrival far too late");
        }
        let payloads: Vec<&[u8]> = rx.iter().map(|p| p.payload.as_slice()).collect();
        let pcm = decode(&payloads);
        let tones: Vec<f32> = (0..6).map(default_tone_hz).collect();
        assert_eq!(dominant(&pcm[4800..], &tones), default_tone_hz(i));
    }
    let c = l.session.counters();
    assert_eq!(c.delivered, packets.len() as u64);
    assert_eq!((c.dropped_full, c.filtered), (0, 0));
    assert!(
        l.bridge.netem_counters().receiver_reports_in > 0,
        "jitape sends RTCP RRs"
    );
    l.session.close().await;
    assert_channel_ends(&mut l.rx).await;
    l.bridge.close().await;
}

/// After `close`, Closed is the last state and every sender of the channel is gone (the peer
/// connection, its callbacks and the reader tasks were all freed).
async fn assert_channel_ends(rx: &mut mpsc::Receiver<MediaEvent>) {
    let mut last_state = None;
    let ended = tokio::time::timeout(ms(3000), async {
        while let Some(event) = rx.recv().await {
            if let MediaEvent::State(s) = event {
                last_state = Some(s);
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the events channel is still held after close"
    );
    assert_eq!(last_state, Some(MediaState::Closed));
}

fn voices_window_start(i: usize) -> Duration {
    ms(200 * i as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_byte_extension_levels_are_parsed() {
    let cfg = BridgeConfig {
        wire: Wire {
            two_byte_extensions: true,
            ..Wire::default()
        },
        ..BridgeConfig::default()
    };
    let scripts = vec![speaker(0, vec![window(0, 200)])];
    let voice = Arc::clone(&scripts[0].voice);
    let mut l = connect(cfg, scripts, 1024).await;
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    let (packets, _) = collect(&mut l.rx, epoch + ms(500)).await;
    assert_eq!(packets.len(), 10);
    for (n, p) in packets.iter().enumerate() {
        assert_eq!(p.audio_level, Some(voice.frame(n).level));
        assert_eq!(p.voice, Some(true));
    }
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_added_mid_session_is_received_from_its_first_packet() {
    let scripts = (0..3).map(|i| speaker(i, vec![window(0, 1400)])).collect();
    let mut l = connect(BridgeConfig::default(), scripts, 4096).await;
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    tokio::time::sleep(ms(300)).await;
    let late = l
        .bridge
        .add_speaker(speaker(3, vec![window(700, 1100)]))
        .expect("free slot");
    l.sources.push(late.clone());
    l.session
        .set_sources(&l.sources, Instant::now())
        .await
        .expect("renegotiate");
    let (packets, _) = collect(&mut l.rx, epoch + ms(1500)).await;
    let sent = l.bridge.sent().await;
    let log = sent.speaker("ep3").expect("sent");
    let got = by_ssrc(&packets);
    let rx = got.get(&late.ssrc).expect("late speaker received");
    assert_eq!(
        rx[0].sequence, log.windows[0].first_seq,
        "from its first packet"
    );
    assert_eq!(rx.len(), log.windows[0].packets as usize);
    let payloads: Vec<&[u8]> = rx.iter().map(|p| p.payload.as_slice()).collect();
    let tones: Vec<f32> = (0..6).map(default_tone_hz).collect();
    assert_eq!(
        dominant(&decode(&payloads)[4800..], &tones),
        default_tone_hz(3)
    );
    assert_eq!(got.len(), 4);
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_without_sources_receives_the_first_one_added() {
    let mut l = connect(BridgeConfig::default(), vec![], 1024).await;
    assert_eq!(l.session.m_lines(), 1);
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    let first = l
        .bridge
        .add_speaker(speaker(0, vec![window(300, 500)]))
        .expect("slot");
    l.sources.push(first.clone());
    l.session
        .set_sources(&l.sources, Instant::now())
        .await
        .expect("renegotiate");
    let (packets, _) = collect(&mut l.rx, epoch + ms(700)).await;
    let sent = l.bridge.sent().await;
    let w = &sent.speaker("ep0").expect("sent").windows[0];
    assert_eq!(packets.len(), 10);
    assert!(packets.iter().all(|p| p.ssrc == first.ssrc));
    assert_eq!(packets[0].sequence, w.first_seq);
    assert_eq!(l.session.m_lines(), 1);
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_sources_stop_others_continue_and_m_lines_are_recycled() {
    let scripts = (0..3).map(|i| speaker(i, vec![window(0, 4000)])).collect();
    let mut l = connect(BridgeConfig::default(), scripts, 8192).await;
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    tokio::time::sleep(ms(300)).await;
    // ep1 leaves the MUC; the bridge keeps sending it, jitape must not emit it any more.
    let ep1 = l
        .sources
        .iter()
        .find(|s| s.owner == "ep1")
        .cloned()
        .expect("ep1");
    let without: Vec<Source> = l
        .sources
        .iter()
        .filter(|s| s.owner != "ep1")
        .cloned()
        .collect();
    l.session
        .set_sources(&without, Instant::now())
        .await
        .expect("remove");
    let removed_at = Instant::now();
    let (packets, _) = collect(&mut l.rx, removed_at + ms(400)).await;
    let after: Vec<&RtpPacket> = packets.iter().filter(|p| p.arrival > removed_at).collect();
    assert!(
        after.iter().all(|p| p.ssrc != ep1.ssrc),
        "removed source still emitted"
    );
    assert!(
        after.iter().filter(|p| p.ssrc != ep1.ssrc).count() >= 20,
        "others stopped"
    );
    assert!(l.session.counters().filtered > 0);

    // Churn: 200 join/leave cycles of phantom sources, two at a time.
    let phantom = |i: u32| Source {
        ssrc: Ssrc(50_000 + i),
        name: None,
        owner: format!("ph{i}"),
        msid: None,
    };
    for i in 0..200 {
        let mut set = without.clone();
        set.extend([phantom(i), phantom(i + 1)]);
        l.session
            .set_sources(&set, Instant::now())
            .await
            .expect("churn");
        assert!(
            l.session.m_lines() <= 4,
            "m-lines grew to {}",
            l.session.m_lines()
        );
    }
    assert_eq!(l.session.stack_transceivers().await, l.session.m_lines());

    // ep1 comes back onto a recycled m-line and is received again.
    let mut back = without.clone();
    back.push(ep1.clone());
    l.session
        .set_sources(&back, Instant::now())
        .await
        .expect("re-add");
    let readded_at = Instant::now();
    let (packets, _) = collect(&mut l.rx, readded_at + ms(400)).await;
    let returned = packets
        .iter()
        .filter(|p| p.ssrc == ep1.ssrc && p.arrival > readded_at)
        .count();
    assert!(
        returned >= 10,
        "recycled m-line carries ep1 again ({returned})"
    );
    assert!(l.session.m_lines() <= 4);
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_sources_with_renegotiation() {
    let voice = Arc::new(Voice::tone(440.0, 0.3).expect("tone"));
    let script = |i: usize| SpeakerScript {
        endpoint: format!("ep{i}"),
        voice: Arc::clone(&voice),
        windows: vec![window(200, 600)],
    };
    let cfg = BridgeConfig {
        max_speakers: 60,
        ..BridgeConfig::default()
    };
    let mut l = connect(cfg, (0..30).map(script).collect(), 8192).await;
    let mut slowest = Duration::ZERO;
    for i in 30..60 {
        let source = l.bridge.add_speaker(script(i)).expect("slot");
        l.sources.push(source);
        slowest = slowest.max(
            l.session
                .set_sources(&l.sources, Instant::now())
                .await
                .expect("renegotiate"),
        );
    }
    // All 60 announced before anyone talks.
    let epoch = Instant::now();
    l.bridge.start(epoch).expect("start");
    let (packets, _) = collect(&mut l.rx, epoch + ms(1000)).await;
    let got = by_ssrc(&packets);
    let keys: HashSet<Ssrc> = got.keys().copied().collect();
    assert_eq!(keys, media_ssrcs(&l.sources));
    assert_eq!(keys.len(), 60);
    for rx in got.values() {
        assert_eq!(rx.len(), 20);
        let seqs: Vec<u16> = rx
            .iter()
            .map(|p| p.sequence.wrapping_sub(rx[0].sequence))
            .collect();
        assert_eq!(seqs, (0..20).collect::<Vec<u16>>());
    }
    assert_eq!(l.session.m_lines(), 60);
    eprintln!("slowest renegotiation up to 60 sources: {slowest:?}");
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bridge_makes_the_session_fail() {
    let scripts = vec![speaker(0, vec![window(0, 10_000)])];
    let mut l = connect(BridgeConfig::default(), scripts, 4096).await;
    l.bridge.start(Instant::now()).expect("start");
    tokio::time::sleep(ms(300)).await;
    l.bridge.fail().await;
    let failed_at = Instant::now();
    let mut states = Vec::new();
    let outcome = tokio::time::timeout(ms(10_000), async {
        while let Some(event) = l.rx.recv().await {
            if let MediaEvent::State(s) = event {
                states.push(s);
                if s == MediaState::Failed {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(outcome, Ok(true), "no Failed state, got {states:?}");
    assert_eq!(
        states.first(),
        Some(&MediaState::Disconnected),
        "{states:?}"
    );
    eprintln!("Failed {:?} after the bridge vanished", failed_at.elapsed());
    l.session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_keeps_an_idle_session_up_on_both_sides() {
    // Longer than both sides' disconnect timeouts (1 s here, 5 s on the bridge): only
    // answered consent checks and keepalives keep the pair alive without media.
    let mut l = connect(BridgeConfig::default(), vec![], 64).await;
    let (_, states) = collect(&mut l.rx, Instant::now() + ms(7000)).await;
    assert!(states.is_empty(), "state changed while idle: {states:?}");
    assert!(l.bridge.is_connected());
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netem_drops_duplicates_and_reorders_as_counted() {
    let cfg = BridgeConfig {
        netem: NetemConfig {
            loss: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            reorder_delay: ms(50),
            seed: 11,
            ..NetemConfig::default()
        },
        ..BridgeConfig::default()
    };
    let scripts = (0..2).map(|i| speaker(i, vec![window(0, 1000)])).collect();
    let mut l = connect(cfg, scripts, 4096).await;
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    let (packets, _) = collect(&mut l.rx, epoch + ms(1400)).await;
    let sent = l.bridge.sent().await;
    let n = l.bridge.netem_counters();
    assert_eq!(n.seen, sent.packets());
    assert_eq!(sent.packets(), 100);
    assert!(
        n.dropped > 0 && n.duplicated > 0 && n.reordered > 0,
        "{n:?}"
    );
    let distinct: HashSet<(Ssrc, u16)> = packets.iter().map(|p| (p.ssrc, p.sequence)).collect();
    assert_eq!(distinct.len() as u64, n.seen - n.dropped, "{n:?}");
    // SRTP replay protection discards the duplicated copies before they reach us.
    assert_eq!(
        packets.len(),
        distinct.len(),
        "duplicates reached the application"
    );
    let mut out_of_order = 0;
    for rx in by_ssrc(&packets).values() {
        let mut highest = rx[0].sequence;
        for p in rx.iter().skip(1) {
            if p.sequence.wrapping_sub(highest) > u16::MAX / 2 {
                out_of_order += 1;
            } else {
                highest = p.sequence;
            }
        }
    }
    assert!(
        out_of_order > 0 && out_of_order <= n.reordered,
        "{out_of_order} vs {n:?}"
    );
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_events_channel_drops_and_counts_without_stalling() {
    let scripts = vec![speaker(0, vec![window(0, 800)])];
    let mut l = connect(BridgeConfig::default(), scripts, 8).await;
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    tokio::time::sleep(ms(1100)).await; // nobody reads meanwhile
    let c = l.session.counters();
    assert_eq!(c.received, 40);
    assert_eq!(c.delivered + c.dropped_full, 40);
    assert!(c.dropped_full >= 32, "{c:?}");
    // The stack kept running: the bridge still sees the connection up and RRs coming.
    let rr_before = l.bridge.netem_counters().receiver_reports_in;
    let (_, states) = collect(&mut l.rx, Instant::now() + ms(1500)).await;
    assert!(!states.contains(&MediaState::Disconnected));
    assert!(l.bridge.netem_counters().receiver_reports_in > rr_before);
    l.session.close().await;
    l.bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_without_opus_is_refused_without_a_connection() {
    let (bridge, mut offer, sources) = SimBridge::allocate(BridgeConfig::default(), vec![])
        .await
        .expect("allocate");
    offer.description.payload_types.retain(|p| p.name != "opus");
    let (tx, _rx) = mpsc::channel(8);
    let result = MediaSession::start(&media_cfg(), &offer, &sources, tx).await;
    assert!(matches!(result, Err(MediaError::Unsupported(_))));
    bridge.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_still_releases_its_connection() {
    let Loop {
        bridge,
        session,
        mut rx,
        ..
    } = connect(BridgeConfig::default(), vec![], 64).await;
    drop(session);
    // Every holder of the events sender (connection callbacks, readers) must go away.
    let ended = tokio::time::timeout(ms(3000), async { while rx.recv().await.is_some() {} }).await;
    assert!(
        ended.is_ok(),
        "a dropped session keeps its connection alive"
    );
    bridge.close().await;
}

/// Threads named after this test's own runtime; webrtc-rs must add none per connection.
fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn thread_count_does_not_grow_with_sessions() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mediathr")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut loops = vec![connect(BridgeConfig::default(), vec![], 64).await];
        let one = threads_named("mediathr");
        for _ in 0..8 {
            loops.push(connect(BridgeConfig::default(), vec![], 64).await);
        }
        assert_eq!(
            threads_named("mediathr"),
            one,
            "threads grew with connections"
        );
        assert_eq!(
            threads_named("webrtc-rx"),
            0,
            "a dedicated reactor thread exists"
        );
        for l in loops {
            l.session.close().await;
            l.bridge.close().await;
        }
    });
}

/// A packet's arrival is when the kernel received it, not when jitape got round to reading
/// it: with jitape's runtime frozen for half a second (a stall: a busy CPU, a long page
/// fault), the packets the bridge kept sending meanwhile still arrive 20 ms apart, not all
/// at the moment jitape woke up.
#[test]
fn arrivals_are_the_kernels_receive_times_even_when_jitape_stalls() {
    let bridge_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("bridge runtime");
    let jitape_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("jitape runtime");
    let scripts = vec![speaker(0, vec![window(0, 3000)])];
    let (mut bridge, offer, sources) = bridge_rt
        .block_on(SimBridge::allocate(BridgeConfig::default(), scripts))
        .expect("allocate");
    let (tx, mut rx) = mpsc::channel(4096);
    let (session, transport) = jitape_rt
        .block_on(MediaSession::start(&media_cfg(), &offer, &sources, tx))
        .expect("media session");
    bridge_rt
        .block_on(bridge.accept(&transport))
        .expect("accept");
    // jitape's side (on this thread) and the bridge (on its own) connect.
    let connected = jitape_rt.block_on(async {
        tokio::time::timeout(ms(5000), async {
            while let Some(event) = rx.recv().await {
                if event == MediaEvent::State(MediaState::Connected) {
                    return true;
                }
            }
            false
        })
        .await
    });
    assert_eq!(connected, Ok(true));
    let epoch = Instant::now() + ms(100);
    {
        let _in_bridge_runtime = bridge_rt.enter();
        bridge.start(epoch).expect("start");
    }
    // Let jitape read the first packets, then freeze it for 500 ms while the bridge sends.
    let (before, _) = jitape_rt.block_on(collect(&mut rx, epoch + ms(400)));
    let stall_start = Instant::now();
    std::thread::sleep(ms(500));
    let stall_end = Instant::now();
    let (after, _) = jitape_rt.block_on(collect(&mut rx, stall_end + ms(300)));
    assert!(!before.is_empty());
    let stalled: Vec<Instant> = after
        .iter()
        .map(|p| p.arrival)
        .filter(|t| *t > stall_start + ms(40) && *t < stall_end - ms(40))
        .collect();
    assert!(
        stalled.len() >= 18,
        "packets that reached the machine during the stall keep their arrival times: {} of ~25",
        stalled.len()
    );
    for pair in stalled.windows(2) {
        let gap = pair[1].saturating_duration_since(pair[0]);
        assert!(
            gap >= ms(10) && gap <= ms(30),
            "arrivals 20 ms apart as sent, got {gap:?}"
        );
    }
    jitape_rt.block_on(session.close());
    bridge_rt.block_on(bridge.close());
}
