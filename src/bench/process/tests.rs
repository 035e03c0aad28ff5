//! Unit tests of `process`.

use super::*;

#[test]
fn the_generated_config_passes_jitapes_own_validation() {
    let text = config_text(
        5347,
        Path::new("/tmp/x \"y\""),
        "recorder.localhost",
        "s",
        "conference.localhost",
        48_000,
    );
    let cfg = jitape::config::load(&text, std::iter::empty()).expect("valid config");
    assert_eq!(cfg.xmpp.port, 5347);
    assert_eq!(cfg.recording.dir, PathBuf::from("/tmp/x \"y\""));
    assert_eq!(cfg.recording.sample_rate.hz(), 48_000);
}
