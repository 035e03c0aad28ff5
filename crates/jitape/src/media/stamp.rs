//! When each RTP packet reached the machine: the kernel's receive timestamp, not the moment
//! jitape got round to reading it. A recorder's timeline anchors talk spurts on arrival
//! times; stamping them when the track reader runs would turn jitape's own scheduling delay
//! (a busy CPU, a stall) into misplaced audio.
//!
//! webrtc-rs reads its UDP sockets through `quinn-udp`, which asks the kernel for
//! `SO_TIMESTAMPNS` and reports each datagram's receive time in `RecvMeta::timestamp`, but
//! its driver drops that value. [`StampingRuntime`] is the tokio runtime webrtc-rs already
//! uses, except that each UDP socket it wraps also notes, for every RTP datagram, its
//! (SSRC, sequence number) — clear text in SRTP — with that receive time in the session's
//! [`ArrivalBook`]. The track readers take the time back out by (SSRC, sequence number).
//! It also gives the socket a receive buffer sized for the lateness window, so a stall of
//! jitape does not overflow the kernel's queue.
//!
//! In: datagrams as the kernel delivers them. Out: the same datagrams to webrtc-rs, and
//! arrival instants in the book. The book is the one piece of state shared between the
//! socket (read on the connection's driver task) and the track readers of one session:
//! webrtc-rs's API leaves no other way; it is a fixed-size table behind a lock held for one
//! slot's read or write.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Slots in a session's arrival book: well above the packets of all sources in flight
/// between the socket and the track readers (a stall of seconds at 50 packets/s each).
const BOOK_SLOTS: usize = 1 << 14;
/// Slots per bucket: a packet's entry may go in any slot of its bucket, and only the oldest
/// entry of a full bucket is forgotten. With one slot per key (and a multiplicative hash) two
/// speakers whose keys once fell on one slot took each other's entries for as long as their
/// counters ran in step: in about one session of six (4 speakers, random SSRCs and sequence
/// numbers) 8-24 % of the stamps were lost with jitape 1.4 s behind, each such packet then
/// stamped when read, seconds late.
const WAYS: usize = 16;
/// A kernel timestamp further back than this is not believed (a clock step): the packet
/// counts as arriving when it was read.
const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    at: Instant,
}

/// Per session: when each recent RTP packet reached the machine.
pub struct ArrivalBook {
    slots: Mutex<Box<[Option<Slot>]>>,
    /// Datagrams seen on the session's sockets, by kind.
    pub rtp: AtomicU64,
    pub rtcp: AtomicU64,
    /// RTP datagrams that carried no kernel timestamp (stamped when read).
    pub unstamped: AtomicU64,
}

impl fmt::Debug for ArrivalBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrivalBook")
            .field("rtp", &self.rtp.load(Ordering::Relaxed))
            .field("rtcp", &self.rtcp.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for ArrivalBook {
    fn default() -> Self {
        ArrivalBook {
            slots: Mutex::new(vec![None; BOOK_SLOTS].into_boxed_slice()),
            rtp: AtomicU64::new(0),
            rtcp: AtomicU64::new(0),
            unstamped: AtomicU64::new(0),
        }
    }
}

fn key(ssrc: u32, seq: u16) -> u64 {
    (u64::from(ssrc) << 16) | u64::from(seq)
}

/// The first slot of `key`'s bucket. A full mix of the bits (SplitMix64's finalizer), so the
/// keys of speakers whose counters advance in step spread like random ones.
fn bucket(key: u64) -> usize {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let buckets = BOOK_SLOTS / WAYS;
    (z >> (64 - buckets.trailing_zeros())) as usize * WAYS
}

impl ArrivalBook {
    /// Notes that packet (`ssrc`, `seq`) arrived at `at`.
    pub fn note(&self, ssrc: u32, seq: u16, at: Instant) {
        let key = key(ssrc, seq);
        let first = bucket(key);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ways) = slots.get_mut(first..first + WAYS) else {
            return;
        };
        // The same packet again, else a free slot, else the oldest entry.
        let slot = ways
            .iter()
            .position(|s| s.is_some_and(|s| s.key == key))
            .or_else(|| ways.iter().position(Option::is_none))
            .or_else(|| (0..WAYS).min_by_key(|&i| ways.get(i).copied().flatten().map(|s| s.at)));
        if let Some(slot) = slot.and_then(|i| ways.get_mut(i)) {
            *slot = Some(Slot { key, at });
        }
    }

    /// When packet (`ssrc`, `seq`) arrived, if noted (and not overwritten since).
    pub fn take(&self, ssrc: u32, seq: u16) -> Option<Instant> {
        let key = key(ssrc, seq);
        let first = bucket(key);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .get_mut(first..first + WAYS)?
            .iter_mut()
            .find(|s| s.is_some_and(|s| s.key == key))?
            .take()
            .map(|s| s.at)
    }

    /// Notes every RTP datagram in `buf` (datagrams of `stride` bytes, as the socket
    /// delivered them) as arrived at `at`.
    fn note_datagrams(&self, buf: &[u8], stride: usize, at: Option<Instant>) {
        for datagram in buf.chunks(stride.max(1)) {
            match classify(datagram) {
                Some(Kind::Rtp { ssrc, seq }) => {
                    self.rtp.fetch_add(1, Ordering::Relaxed);
                    match at {
                        Some(at) => self.note(ssrc, seq, at),
                        None => {
                            self.unstamped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Some(Kind::Rtcp) => {
                    self.rtcp.fetch_add(1, Ordering::Relaxed);
                }
                None => {}
            }
        }
    }
}

enum Kind {
    Rtp { ssrc: u32, seq: u16 },
    Rtcp,
}

/// RTP or RTCP by the first bytes (RFC 7983 demultiplexing, RFC 5761 for RTCP: payload
/// types 64-95 with the marker bit are RTCP packet types 192-223). SRTP keeps the fixed
/// header in clear text.
fn classify(d: &[u8]) -> Option<Kind> {
    if d.len() < 12 || !(128..=191).contains(&d[0]) {
        return None;
    }
    if (64..=95).contains(&(d[1] & 0x7f)) {
        return Some(Kind::Rtcp);
    }
    Some(Kind::Rtp {
        seq: u16::from_be_bytes([d[2], d[3]]),
        ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
    })
}

/// The kernel's receive time of a datagram (`since_epoch`, CLOCK_REALTIME) as an `Instant`,
/// from the two clocks read now.
fn arrival(since_epoch: Duration, now: Instant, wall_now: SystemTime) -> Option<Instant> {
    let wall = wall_now.duration_since(UNIX_EPOCH).ok()?;
    let age = wall.checked_sub(since_epoch).unwrap_or_default();
    (age <= MAX_AGE).then(|| now.checked_sub(age).unwrap_or(now))
}

/// The runtime for one media session: tokio, with stamping UDP sockets. See the module doc.
#[derive(Debug)]
pub struct StampingRuntime {
    book: Arc<ArrivalBook>,
    /// Receive buffer to ask for on each socket (bytes).
    recv_buffer: usize,
    /// What the kernel granted (bytes), for the metrics and the log.
    pub granted: Arc<AtomicU64>,
}

impl StampingRuntime {
    pub fn new(book: Arc<ArrivalBook>, recv_buffer: usize) -> Self {
        StampingRuntime {
            book,
            recv_buffer,
            granted: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Asks for `bytes` of receive buffer: beyond `net.core.rmem_max` only with
/// CAP_NET_ADMIN (then forced). Returns what the kernel granted (it reports double the
/// usable size).
fn size_recv_buffer(sock: &std::net::UdpSocket, bytes: usize) -> usize {
    use rustix::net::sockopt;
    if bytes > 0
        && sockopt::set_socket_recv_buffer_size_force(sock, bytes).is_err()
        && let Err(e) = sockopt::set_socket_recv_buffer_size(sock, bytes)
    {
        tracing::debug!(error = %e, "socket receive buffer not resized");
    }
    sockopt::socket_recv_buffer_size(sock).unwrap_or(0)
}

impl Runtime for StampingRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, sock: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let granted = size_recv_buffer(&sock, self.recv_buffer);
        self.granted.store(granted as u64, Ordering::Relaxed);
        let inner = TokioRuntime.wrap_udp_socket(sock)?;
        Ok(Arc::new(StampingSocket {
            inner,
            book: Arc::clone(&self.book),
            pace: Pace::default(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        TokioRuntime.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+arrival-stamps"
    }
}

/// How long a session's socket rests after it was read empty. Read on readiness, each
/// datagram (80 a second in a conference of four) woke the connection's driver task, then a
/// track reader, then the conference: hundreds of thousands of task wakes a second at 150
/// conferences. Read in rounds, the datagrams of a round go through each task in one wake.
/// The kernel holds them meanwhile and stamps their arrival (so nothing moves), and a
/// recorder writes seconds behind anyway (`recording.late_window`); the cost is up to this
/// much more per round trip while the session is set up.
pub const READ_ROUND: Duration = Duration::from_millis(50);

/// webrtc-rs's own tokio UDP socket, noting what arrives when, read in rounds.
#[derive(Debug)]
struct StampingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    book: Arc<ArrivalBook>,
    pace: Pace,
}

/// When a socket may be read again.
#[derive(Debug, Default)]
struct Pace {
    /// Set while the socket rests: the round's end.
    rest: Mutex<Option<Pin<Box<tokio::time::Sleep>>>>,
}

impl Pace {
    /// `Ready` once the socket may be read; else the caller is woken when it may.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut rest = self.rest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sleep) = rest.as_mut()
            && sleep.as_mut().poll(cx).is_pending()
        {
            return Poll::Pending;
        }
        *rest = None;
        Poll::Ready(())
    }

    /// The socket was read empty: it rests for a round, and the caller is woken after it.
    fn rest(&self, cx: &mut Context<'_>) {
        let mut rest = self.rest.lock().unwrap_or_else(|p| p.into_inner());
        let sleep = rest.insert(Box::pin(tokio::time::sleep(READ_ROUND)));
        // Registers the waker (a sleep already due, which a round never is, wakes it now).
        if sleep.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }
}

impl AsyncUdpSocket for StampingSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if self.pace.poll_ready(cx).is_pending() {
            return Poll::Pending;
        }
        // Asked without the caller's waker: an empty socket must not wake the driver when the
        // next datagram comes, only the end of its rest.
        let result = self
            .inner
            .poll_recv(&mut Context::from_waker(Waker::noop()), bufs, meta);
        if result.is_pending() {
            self.pace.rest(cx);
            return Poll::Pending;
        }
        if let Poll::Ready(Ok(n)) = &result {
            // Wall clock first: if jitape is preempted between the two reads, the arrival
            // computed comes out later than it was, never earlier. An early one would pull the
            // clock estimate (a minimum) and every spurt placed by it earlier by the
            // preemption (the contention benchmark met 10 ms).
            let wall_now = SystemTime::now();
            let now = Instant::now();
            for (buf, m) in bufs.iter().zip(meta.iter()).take(*n) {
                let at = m.timestamp.and_then(|t| arrival(t, now, wall_now));
                let len = m.len.min(buf.len());
                self.book.note_datagrams(&buf[..len], m.stride, at);
            }
        }
        result
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

#[cfg(test)]
mod tests;
