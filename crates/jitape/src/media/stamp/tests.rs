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

/// Packets of senders (SSRC, first sequence number) sending in step, noted and taken back
/// `in_flight` later (jitape that far behind): how many lost their stamp (and would count as
/// arriving when read, late by the stall).
fn misses(senders: &[(u32, u16)], in_flight: usize, total: usize) -> usize {
    let book = ArrivalBook::default();
    let t0 = Instant::now();
    let n = senders.len();
    let key = |i: usize| {
        let (ssrc, seq0) = senders[i % n];
        let seq = seq0.wrapping_add((i / n) as u16);
        (
            ssrc,
            seq,
            t0 + Duration::from_micros(20_000 * i as u64 / n as u64),
        )
    };
    let mut missed = 0;
    for i in 0..total + in_flight {
        if i < total {
            let (ssrc, seq, at) = key(i);
            book.note(ssrc, seq, at);
        }
        if let Some(j) = i.checked_sub(in_flight) {
            let (ssrc, seq, at) = key(j);
            missed += usize::from(book.take(ssrc, seq) != Some(at));
        }
    }
    missed
}

fn senders(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<(u32, u16)> {
    use rand::Rng;
    (0..n).map(|_| (rng.random(), rng.random())).collect()
}

#[test]
fn a_stall_as_long_as_the_lateness_window_loses_no_stamp() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Sessions of 4 speakers with jitape 300 ms behind (60 packets in flight): the
    // direct-mapped book lost stamps in 3 % of them, a speaker's for as long as it lasted.
    let lossy = (0..200)
        .filter(|_| misses(&senders(&mut rng, 4), 60, 1000) > 0)
        .count();
    assert_eq!(lossy, 0, "sessions that lost stamps");
    // The bench's strained runs: jitape's intake 1.4 s behind (280 packets in flight), up to
    // the 5 s lateness window (1000); and 8 speakers over 5 s (2000).
    let lost = [
        misses(&senders(&mut rng, 4), 280, 20_000),
        misses(&senders(&mut rng, 4), 1000, 20_000),
        misses(&senders(&mut rng, 8), 2000, 40_000),
    ];
    assert_eq!(lost, [0, 0, 0]);
}

/// A steady flow of datagrams is read in rounds: the reading task sleeps about once per
/// `READ_ROUND`, not once per datagram, and each datagram keeps the time the kernel received
/// it (read up to a round later, it is still placed where it was sent). Every sleep of the
/// reader is a rest of at least a round, so however slowly this machine runs the test, the
/// sleeps stay within its duration over a round; read on readiness, the reader slept before
/// nearly every one of the 100 datagrams, 4 ms apart.
#[tokio::test]
async fn a_steady_flow_is_read_in_rounds_and_keeps_its_kernel_arrival_times() {
    let book = Arc::new(ArrivalBook::default());
    let rt = StampingRuntime::new(Arc::clone(&book), 0);
    let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = std_sock.local_addr().expect("address");
    let sock = rt.wrap_udp_socket(std_sock).expect("wrap");
    let sender = std::thread::spawn(move || {
        let out = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut sent = Vec::new();
        for seq in 0..100u16 {
            let before = Instant::now();
            out.send_to(&rtp(9, seq), to).expect("send");
            sent.push((before, Instant::now()));
            std::thread::sleep(Duration::from_millis(4));
        }
        sent
    });
    let started = Instant::now();
    let mut sleeps = 0u64;
    let mut read_at = Vec::new();
    let mut buf = vec![0u8; 1500];
    while read_at.len() < 100 {
        let read = std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            let mut meta = [RecvMeta::default()];
            let r = sock.poll_recv(cx, &mut bufs, &mut meta);
            sleeps += u64::from(r.is_pending());
            r
        });
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a datagram within 10 s")
            .expect("read");
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        assert_eq!(
            usize::from(seq),
            read_at.len(),
            "datagrams in the order sent"
        );
        read_at.push(Instant::now());
    }
    let elapsed = started.elapsed();
    let sent = sender.join().expect("sender");
    let rounds = (elapsed.as_millis() / READ_ROUND.as_millis()) as u64;
    assert!(
        sleeps <= 1 + rounds,
        "{sleeps} sleeps for 100 datagrams in {elapsed:?}: woken per datagram"
    );
    let mut later = 0;
    for (seq, (&(before, after), &read)) in sent.iter().zip(&read_at).enumerate() {
        let at = book.take(9, seq as u16).expect("stamped by the kernel");
        // The stamp is never earlier than the send (the conversion errs late, see `arrival`).
        assert!(
            at + Duration::from_millis(1) >= before,
            "datagram {seq} stamped early"
        );
        assert!(at <= read, "datagram {seq} stamped after it was read");
        later += usize::from(at > after + Duration::from_millis(5));
    }
    assert!(
        later <= 5,
        "{later} of 100 stamps more than 5 ms after their send"
    );
}
