//! Unit tests of `micro`.

use super::*;

#[test]
fn every_workload_does_its_unit_of_work() {
    assert_eq!(DecodeBench::new().step(), 960);
    let mut m = MixBench::new();
    assert_eq!(m.step(), 4800);
    assert_eq!(FlacBench::new(true).step(), 4800);
    assert!(SrtpBench::new(true).step() > 20);
    assert!(SrtpBench::new(false).step() > 20);
    let mut p = PipelineBench::new();
    // the whole conference, playout delay included, 100 ms at a time
    let written = p.step();
    assert!((60 * 48_000..=61 * 48_000).contains(&written), "{written}");
    assert!(LowerBoundBench::new(false).step() > 10 * 48_000);
    assert!(LowerBoundBench::new(true).step() > 10 * 48_000);
}

#[test]
fn the_conversation_has_everyone_talking_about_a_third_of_the_time() {
    let c = Conversation::new(4, 60.0, 11);
    for k in 0..4 {
        let n = c.packets.iter().filter(|p| p.1 == k).count();
        let ratio = n as f64 * 0.02 / 60.0;
        assert!((0.15..0.55).contains(&ratio), "speaker {k}: {ratio}");
    }
    assert!(c.packets.windows(2).all(|w| w[0].0 <= w[1].0));
}
