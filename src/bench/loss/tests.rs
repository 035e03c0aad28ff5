//! Unit tests of `loss`.

use super::*;

fn result(results: &[LossResult], scheme: Scheme, loss: Loss) -> &LossResult {
    results
        .iter()
        .find(|r| r.scheme == scheme && r.loss == loss)
        .expect("case measured")
}

/// RED at distance 2 recovers every packet of a 40 ms hole and random single losses,
/// which FEC only conceals; distance 1 recovers one packet of a hole; nothing is lost
/// without loss.
#[test]
fn red_recovers_what_fec_only_conceals() {
    let pcm = speech_like(12.0, 140.0);
    let burst = Loss::Burst {
        len_ms: 40,
        every_ms: 1000,
    };
    let mut by_scheme = Vec::new();
    for scheme in SCHEMES {
        let stream = Stream::new(&pcm, scheme);
        let reference = stream.record(&mut |_| false);
        assert_eq!(
            reference.1.lost + reference.1.concealed_plc,
            0,
            "{scheme:?}"
        );
        for loss in [burst, Loss::Random(0.05)] {
            by_scheme.push(stream.measure(&reference, loss, 3));
        }
    }
    let (fec, red1, red2) = (
        result(&by_scheme, Scheme::InbandFec, burst),
        result(&by_scheme, Scheme::Red(1), burst),
        result(&by_scheme, Scheme::Red(2), burst),
    );
    assert!(fec.wire_lost_pct > 3.0, "{}", table(&by_scheme));
    assert_eq!(fec.red_pct, 0.0);
    assert!(
        (red2.red_pct - red2.wire_lost_pct).abs() < 1e-9,
        "{}",
        table(&by_scheme)
    );
    assert!(
        (red1.red_pct - red1.wire_lost_pct / 2.0).abs() < 0.2,
        "{}",
        table(&by_scheme)
    );
    assert!(
        red2.snr_db > 60.0 && red2.bad_blocks_pct == 0.0,
        "{}",
        table(&by_scheme)
    );
    assert!(
        fec.bad_blocks_pct > red2.bad_blocks_pct,
        "{}",
        table(&by_scheme)
    );
    let random = result(&by_scheme, Scheme::Red(2), Loss::Random(0.05));
    assert!(
        random.red_pct > 0.95 * random.wire_lost_pct,
        "{}",
        table(&by_scheme)
    );
    assert!(red2.kbps > 2.5 * fec.kbps * 0.8, "RED repeats the frames");
}
