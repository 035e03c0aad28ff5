//! Unit tests of `stamp`.

use super::*;

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut d = vec![0x90, 111];
    d.extend(seq.to_be_bytes());
    d.extend(1234u32.to_be_bytes());
    d.extend(ssrc.to_be_bytes());
    d.extend([0xbe, 0xde, 0, 0]);
    d
}

#[test]
fn packets_are_told_apart_and_their_arrival_taken_back_once() {
    let book = ArrivalBook::default();
    let t0 = Instant::now();
    let mut buf = rtp(7, 65535);
    buf.extend(rtp(7, 0));
    let stride = buf.len() / 2;
    book.note_datagrams(&buf, stride, Some(t0));
    let mut rtcp = vec![0x80, 200, 0, 6];
    rtcp.extend([0u8; 24]);
    book.note_datagrams(&rtcp, rtcp.len(), Some(t0));
    book.note_datagrams(&[20, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 13, Some(t0));
    assert_eq!(book.rtp.load(Ordering::Relaxed), 2);
    assert_eq!(book.rtcp.load(Ordering::Relaxed), 1);
    assert_eq!(book.take(7, 65535), Some(t0));
    assert_eq!(book.take(7, 0), Some(t0));
    assert_eq!(book.take(7, 0), None, "taken once");
    assert_eq!(book.take(8, 1), None);
}

#[test]
fn a_kernel_time_becomes_an_instant_that_age_ago() {
    let now = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let sent = Duration::from_secs(1_800_000_000) - Duration::from_millis(250);
    let at = arrival(sent, now, wall).unwrap();
    assert_eq!(now - at, Duration::from_millis(250));
    // A timestamp from the future (clock skew between the reads) is "now".
    assert_eq!(arrival(sent + Duration::from_secs(1), now, wall), Some(now));
    // Implausibly old: not believed.
    assert_eq!(arrival(Duration::from_secs(1), now, wall), None);
}

#[test]
fn a_full_book_forgets_old_entries_not_new_ones() {
    let book = ArrivalBook::default();
    let t0 = Instant::now();
    for seq in 0..=u16::MAX {
        book.note(1, seq, t0);
    }
    let kept = (0..=u16::MAX)
        .filter(|s| book.take(1, *s).is_some())
        .count();
    assert!(kept > BOOK_SLOTS / 2, "{kept}");
    book.note(2, 5, t0);
    assert_eq!(book.take(2, 5), Some(t0));
}
