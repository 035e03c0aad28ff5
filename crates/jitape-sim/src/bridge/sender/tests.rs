//! Unit tests of `sender`.

use super::*;
use crate::voice::Voice;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

fn live(windows: Vec<TalkWindow>) -> Live {
    let script = SpeakerScript {
        endpoint: "a1".into(),
        voice: Arc::new(Voice::tone(440.0, 0.3).expect("tone")),
        windows,
    };
    let track = MediaStreamTrack::new(
        "s".into(),
        "t".into(),
        "l".into(),
        RtpCodecKind::Audio,
        vec![],
    );
    Live::new(
        script,
        0x1234_5678,
        Arc::new(TrackLocalStaticRTP::new(track)),
    )
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn talks_only_inside_windows_and_jumps_the_timestamp_over_gaps() {
    let mut l = live(vec![
        TalkWindow {
            start: ms(0),
            end: ms(60),
        },
        TalkWindow {
            start: ms(200),
            end: ms(240),
        },
    ]);
    let sent: Vec<(u64, rtp::Packet)> = (0..15)
        .filter_map(|k| l.packet(k, &Wire::default()).map(|p| (k, p)))
        .collect();
    let ticks: Vec<u64> = sent.iter().map(|(k, _)| *k).collect();
    assert_eq!(ticks, vec![0, 1, 2, 10, 11]);
    let p: Vec<&rtp::Packet> = sent.iter().map(|(_, p)| p).collect();
    // sequence numbers are contiguous, timestamps follow the clock
    assert_eq!(
        p[3].header.sequence_number,
        p[2].header.sequence_number.wrapping_add(1)
    );
    assert_eq!(
        p[3].header.timestamp.wrapping_sub(p[2].header.timestamp),
        8 * 960
    );
    assert_eq!(
        p[1].header.timestamp.wrapping_sub(p[0].header.timestamp),
        960
    );
    // marker on the first packet of each spurt
    let markers: Vec<bool> = p.iter().map(|p| p.header.marker).collect();
    assert_eq!(markers, vec![true, false, false, true, false]);
    assert!(p.iter().all(|p| p.header.ssrc == 0x1234_5678));
    assert_eq!(p[0].header.extension_profile, 0xBEDE);
    assert_eq!(p[0].header.extensions[0].id, super::super::AUDIO_LEVEL_ID);
    assert!(
        p.iter()
            .all(|p| p.header.payload_type == super::super::OPUS_PT)
    );
    assert!(
        p[0].header.extensions[0].payload[0] & 0x80 != 0,
        "voice flag set"
    );
}

#[test]
fn the_wire_log_becomes_delivered_and_lost_tick_runs() {
    let base = 0xffff_fc00u32; // wraps within the first ticks
    let p = |k: u32, marker: bool, delivered: bool| WirePacket {
        ssrc: 9,
        timestamp: base.wrapping_add(k * 960),
        marker,
        delivered,
    };
    let mut log = Vec::new();
    for k in 3..12 {
        log.push(p(k, k == 3, false));
        // 6 and 7 are dropped; 9 is offered twice (a retry) and delivered once.
        if !(6..8).contains(&k) {
            log.push(p(k, k == 3, true));
        }
    }
    log.push(p(9, false, false));
    log.push(WirePacket {
        ssrc: 10,
        ..p(6, false, true)
    });
    let w = WireFrames::from_log(&log, 9, base);
    assert_eq!(w.delivered, vec![(3, 5), (8, 11)]);
    assert_eq!(w.lost, vec![(6, 7)]);
    assert_eq!(w.onsets, vec![3]);
}

#[test]
fn red_repeats_the_spurts_previous_frames_like_a_browser() {
    let mut l = live(vec![
        TalkWindow {
            start: ms(0),
            end: ms(80),
        },
        TalkWindow {
            start: ms(200),
            end: ms(240),
        },
    ]);
    let wire = Wire {
        opus_pt: 109,
        audio_level_id: 16,
        red: Some(super::super::RedSend {
            pt: 112,
            distance: 2,
        }),
        ..Wire::default()
    };
    let sent: Vec<rtp::Packet> = (0..15).filter_map(|k| l.packet(k, &wire)).collect();
    assert_eq!(sent.len(), 6);
    let mut opus = Vec::new();
    for p in &sent {
        assert_eq!(p.header.payload_type, 112);
        assert_eq!(p.header.extension_profile, 0x1000, "id 16 needs two bytes");
        assert_eq!(p.header.extensions[0].id, 16);
        let r = red::parse(&p.payload).expect("RED");
        assert_eq!(r.primary_pt, 109);
        let blocks: Vec<(u32, &[u8])> = r.redundant.iter().map(|b| (b.ts_offset, b.data)).collect();
        opus.push((
            r.primary.to_vec(),
            blocks
                .iter()
                .map(|(o, d)| (*o, d.to_vec()))
                .collect::<Vec<_>>(),
        ));
    }
    let offsets: Vec<Vec<u32>> = opus
        .iter()
        .map(|(_, b)| b.iter().map(|(o, _)| *o).collect())
        .collect();
    // Within a spurt: none, then one, then the two previous frames, oldest first; a new
    // spurt starts without redundancy.
    assert_eq!(
        offsets,
        [
            vec![],
            vec![960],
            vec![1920, 960],
            vec![1920, 960],
            vec![],
            vec![960]
        ]
    );
    assert_eq!(
        opus[2].1[0].1, opus[0].0,
        "the oldest block repeats two frames back"
    );
    assert_eq!(opus[2].1[1].1, opus[1].0);
}

#[test]
fn records_first_and_last_packet_per_window() {
    let mut l = live(vec![TalkWindow {
        start: ms(0),
        end: ms(60),
    }]);
    let t0 = SystemTime::UNIX_EPOCH;
    let wire = Wire {
        two_byte_extensions: true,
        ..Wire::default()
    };
    for k in 0..3 {
        let p = l.packet(k, &wire).expect("talking");
        assert_eq!(p.header.extension_profile, 0x1000);
        l.record(p.header.sequence_number, k, t0 + ms(k * 20));
    }
    assert!(l.packet(3, &wire).is_none());
    let w = &l.log.windows[0];
    assert_eq!(w.packets, 3);
    assert_eq!(w.last_seq, w.first_seq.wrapping_add(2));
    assert_eq!(w.last.duration_since(w.first).ok(), Some(ms(40)));
}
