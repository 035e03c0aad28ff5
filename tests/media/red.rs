//! The media stage with Jicofo's other codec configurations: another Opus payload type, RED
//! (RFC 2198) and an audio-level id that needs two-byte header extensions, against the
//! simulated bridge over loopback.

use std::sync::Arc;
use std::time::Instant;

use super::{collect, connect, ms, speaker, window};
use jitape::media::red;
use jitape_sim::bridge::{BridgeConfig, RedSend, Wire};

/// A Jicofo configured with Opus at 109, the audio level at id 16 (two-byte extensions) and
/// RED at 112 for a receiver that asked for it: webrtc-rs negotiates all three from the
/// synthesised offer, and every RED packet carries the speaker's frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_payload_types_red_and_a_two_byte_audio_level_id_are_received() {
    let cfg = BridgeConfig {
        wire: Wire {
            opus_pt: 109,
            audio_level_id: 16,
            red: Some(RedSend {
                pt: 112,
                distance: 2,
            }),
            ..Wire::default()
        },
        ..BridgeConfig::default()
    };
    let scripts = vec![speaker(0, vec![window(0, 200)])];
    let voice = Arc::clone(&scripts[0].voice);
    let mut l = connect(cfg, scripts, 1024).await;
    let red = l.offer.description.red().map(|r| r.id);
    assert_eq!(
        (l.offer.description.opus().map(|o| o.id), red),
        (Some(109), Some(112))
    );
    let epoch = Instant::now() + ms(100);
    l.bridge.start(epoch).expect("start");
    let (packets, _) = collect(&mut l.rx, epoch + ms(500)).await;
    assert_eq!(packets.len(), 10);
    for (n, p) in packets.iter().enumerate() {
        assert_eq!(p.payload_type, 112);
        assert_eq!(p.audio_level, Some(voice.frame(n).level), "packet {n}");
        let u = red::unpack(p, 109).expect("RED");
        assert_eq!(u.primary.payload_type, 109);
        assert_eq!(u.primary.payload, voice.frame(n).opus);
        assert_eq!(u.redundant.len(), n.min(2));
        for (back, r) in u.redundant.iter().enumerate() {
            assert_eq!(r.payload, voice.frame(n - back - 1).opus);
        }
    }
    l.session.close().await;
    l.bridge.close().await;
}
