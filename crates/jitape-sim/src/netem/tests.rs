//! The network emulator's decision core, its wire log and its packet classification.

use super::*;

fn run(cfg: NetemConfig, n: usize) -> (Vec<Fate>, NetemCounters) {
    let mut netem = Netem::new(cfg);
    let fates = (0..n).map(|_| netem.decide()).collect();
    (fates, netem.counters())
}

#[test]
fn the_same_seed_gives_the_same_fates() {
    let cfg = NetemConfig {
        loss: 0.1,
        duplicate: 0.1,
        reorder: 0.1,
        jitter: Duration::from_millis(40),
        seed: 7,
        ..NetemConfig::default()
    };
    let (a, ca) = run(cfg.clone(), 1000);
    let (b, cb) = run(cfg.clone(), 1000);
    assert_eq!(a, b);
    assert_eq!(ca, cb);
    let (c, _) = run(NetemConfig { seed: 8, ..cfg }, 1000);
    assert_ne!(a, c);
}

#[test]
fn rates_match_the_configuration() {
    let cfg = NetemConfig {
        loss: 0.05,
        duplicate: 0.02,
        reorder: 0.02,
        jitter: Duration::from_millis(40),
        seed: 42,
        ..NetemConfig::default()
    };
    let (fates, c) = run(cfg, 20_000);
    assert_eq!(c.seen, 20_000);
    // binomial: 5 % of 20 000 = 1000 +- 3 sigma (~92)
    assert!((900..=1100).contains(&c.dropped), "dropped {}", c.dropped);
    assert!(
        (300..=500).contains(&c.duplicated),
        "duplicated {}",
        c.duplicated
    );
    assert!(
        (300..=500).contains(&c.reordered),
        "reordered {}",
        c.reordered
    );
    let drops = fates.iter().filter(|f| **f == Fate::Drop).count() as u64;
    assert_eq!(drops, c.dropped);
    let max = fates
        .iter()
        .filter_map(|f| match f {
            Fate::Send { delay, .. } => Some(*delay),
            Fate::Drop => None,
        })
        .max()
        .unwrap_or_default();
    assert!(max <= Duration::from_millis(90) && max > Duration::from_millis(40));
}

#[test]
fn no_impairment_sends_everything_once_immediately() {
    let (fates, c) = run(NetemConfig::default(), 100);
    assert!(fates.iter().all(|f| *f
        == Fate::Send {
            delay: Duration::ZERO,
            copies: 1
        }));
    assert_eq!(c.dropped + c.duplicated + c.reordered, 0);
}

#[test]
fn a_blackout_drops_every_packet_and_the_counters_survive_it() {
    let link = NetemLink::new(NetemConfig::default());
    let normal = NetemConfig {
        jitter: Duration::from_millis(10),
        ..NetemConfig::default()
    };
    link.configure(normal.blackout());
    let fates: Vec<Fate> = (0..50).map(|_| link.lock().decide()).collect();
    assert!(fates.iter().all(|f| *f == Fate::Drop));
    link.configure(normal);
    let after: Vec<Fate> = (0..50).map(|_| link.lock().decide()).collect();
    assert!(
        after
            .iter()
            .all(|f| matches!(f, Fate::Send { copies: 1, .. }))
    );
    let c = link.counters();
    assert_eq!((c.seen, c.dropped), (100, 50));
}

#[test]
fn the_wire_log_reads_ssrc_timestamp_and_marker_from_the_clear_header() {
    let mut rtp = [0u8; 20];
    rtp[0] = 0x90;
    rtp[1] = 0x80 | 111;
    rtp[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    rtp[8..12].copy_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
    assert_eq!(rtp_fields(&rtp), Some((0xa1b2_c3d4, 0x0102_0304, true)));
    rtp[1] = 111;
    assert_eq!(rtp_fields(&rtp), Some((0xa1b2_c3d4, 0x0102_0304, false)));
    rtp[1] = 201;
    assert_eq!(rtp_fields(&rtp), None, "RTCP is not logged");
    let link = NetemLink::new(NetemConfig::default());
    link.note(&[0x80, 111, 0, 1, 0, 0, 3, 192, 0, 0, 0, 7], false);
    link.note(&[22, 254, 253], true);
    assert_eq!(
        link.wire_log(),
        vec![WirePacket {
            ssrc: 7,
            timestamp: 960,
            marker: false,
            delivered: false
        }]
    );
}

#[test]
fn classifies_rtp_against_rtcp_stun_and_dtls() {
    let mut rtp = [0u8; 20];
    rtp[0] = 0x90;
    rtp[1] = 111;
    assert!(is_rtp(&rtp));
    rtp[1] = 200; // RTCP SR
    assert!(!is_rtp(&rtp));
    rtp[0] = 0x00; // STUN
    assert!(!is_rtp(&rtp));
    rtp[0] = 22; // DTLS handshake
    assert!(!is_rtp(&rtp));
    assert!(!is_rtp(&[0x80, 111]));
}
