//! Simulated network impairments for the loopback bridge, applied per packet before the wire.
//!
//! Two parts: [`Netem`], a pure, seeded decision core (loss, duplication, reordering, uniform
//! jitter) with counters; and [`NetemRuntime`], a webrtc-rs [`Runtime`] that delegates to
//! tokio but wraps every UDP socket so the bridge's outgoing RTP passes through a [`Netem`]
//! and a delay line. STUN, DTLS and RTCP are never impaired (only "vanish" stops them too:
//! then nothing is sent or received at all, while the peer connection stays up).
//!
//! Decisions are drawn from a seeded RNG in a fixed pattern (four draws per RTP packet,
//! whatever the outcome), so a seed reproduces the same fates for the same packet sequence.
//!
//! The link also keeps a wire log ([`WirePacket`]): every RTP packet offered to the socket and
//! every copy actually handed to the kernel, by SSRC and RTP timestamp (the RTP header is in
//! the clear under SRTP), so a recording can be checked against exactly what was lost.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// Impairment settings. Probabilities are fractions (0.05 = 5 %).
#[derive(Debug, Clone, PartialEq)]
pub struct NetemConfig {
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay` (so later ones overtake it).
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for every packet.
    pub jitter: Duration,
    /// A fixed delay for every packet (a path, or a sender, that fell behind and stays).
    pub delay: Duration,
    pub seed: u64,
}

impl Default for NetemConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(50),
            jitter: Duration::ZERO,
            delay: Duration::ZERO,
            seed: 1,
        }
    }
}

impl NetemConfig {
    /// Whether any impairment is configured.
    pub fn is_active(&self) -> bool {
        self.loss > 0.0
            || self.duplicate > 0.0
            || self.reorder > 0.0
            || !self.jitter.is_zero()
            || !self.delay.is_zero()
    }

    /// These settings with every RTP packet lost: a loss burst while it is in force
    /// ([`NetemLink::configure`] it, then configure the normal settings back; the counters
    /// carry on across both).
    pub fn blackout(&self) -> NetemConfig {
        NetemConfig {
            loss: 1.0,
            ..self.clone()
        }
    }
}

/// What netem did so far (RTP packets only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetemCounters {
    /// RTP packets offered to netem.
    pub seen: u64,
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    pub reordered: u64,
    /// Datagrams of any kind swallowed while vanished.
    pub vanished: u64,
    /// RTCP receiver reports (PT 201) that reached the bridge (a wire tap, not an impairment).
    pub receiver_reports_in: u64,
}

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Drop,
    Send { delay: Duration, copies: u8 },
}

/// The pure decision core.
#[derive(Debug)]
pub struct Netem {
    cfg: NetemConfig,
    rng: StdRng,
    counters: NetemCounters,
}

impl Netem {
    pub fn new(cfg: NetemConfig) -> Self {
        Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            counters: NetemCounters::default(),
        }
    }

    /// Decides one RTP packet's fate.
    pub fn decide(&mut self) -> Fate {
        let (loss, dup, reorder, jitter): (f64, f64, f64, f64) = (
            self.rng.random(),
            self.rng.random(),
            self.rng.random(),
            self.rng.random(),
        );
        self.counters.seen += 1;
        if loss < self.cfg.loss {
            self.counters.dropped += 1;
            return Fate::Drop;
        }
        let mut delay = self.cfg.delay + self.cfg.jitter.mul_f64(jitter);
        if reorder < self.cfg.reorder {
            self.counters.reordered += 1;
            delay += self.cfg.reorder_delay;
        }
        let copies = if dup < self.cfg.duplicate {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        Fate::Send { delay, copies }
    }

    pub fn counters(&self) -> NetemCounters {
        self.counters
    }

    pub fn config(&self) -> &NetemConfig {
        &self.cfg
    }
}

/// One RTP packet in the wire log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WirePacket {
    pub ssrc: u32,
    pub timestamp: u32,
    pub marker: bool,
    /// False: offered to the socket (netem then decided); true: a copy handed to the kernel.
    pub delivered: bool,
}

/// The netem state one bridge's sockets share with the bridge's controls.
#[derive(Debug)]
pub struct NetemLink {
    netem: Mutex<Netem>,
    vanished: AtomicBool,
    wire: Mutex<Vec<WirePacket>>,
    /// Media (RTP and RTCP) stops; ICE consent and DTLS go on: a bridge that keeps the
    /// connection but forwards nothing.
    media_stopped: AtomicBool,
}

impl NetemLink {
    pub fn new(cfg: NetemConfig) -> Arc<Self> {
        Arc::new(Self {
            netem: Mutex::new(Netem::new(cfg)),
            vanished: AtomicBool::new(false),
            wire: Mutex::new(Vec::new()),
            media_stopped: AtomicBool::new(false),
        })
    }

    /// Replaces the impairments (and restarts the RNG from the new seed).
    pub fn configure(&self, cfg: NetemConfig) {
        let mut netem = self.lock();
        let counters = netem.counters;
        *netem = Netem::new(cfg);
        netem.counters = counters;
    }

    /// Stop (or resume) all traffic in both directions.
    pub fn set_vanished(&self, vanished: bool) {
        self.vanished.store(vanished, Ordering::Release);
    }

    pub fn is_vanished(&self) -> bool {
        self.vanished.load(Ordering::Acquire)
    }

    /// Stop (or resume) RTP and RTCP towards the peer; STUN and DTLS still pass.
    pub fn set_media_stopped(&self, stopped: bool) {
        self.media_stopped.store(stopped, Ordering::Release);
    }

    pub fn counters(&self) -> NetemCounters {
        self.lock().counters()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Netem> {
        self.netem.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every RTP packet offered and every copy delivered so far, in order.
    pub fn wire_log(&self) -> Vec<WirePacket> {
        self.wire.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Logs an RTP datagram (anything else is ignored).
    fn note(&self, datagram: &[u8], delivered: bool) {
        if let Some((ssrc, timestamp, marker)) = rtp_fields(datagram) {
            self.wire
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(WirePacket {
                    ssrc,
                    timestamp,
                    marker,
                    delivered,
                });
        }
    }

    fn count_vanished(&self) {
        self.lock().counters.vanished += 1;
    }

    fn count_receiver_reports(&self, n: u64) {
        if n > 0 {
            self.lock().counters.receiver_reports_in += n;
        }
    }
}

/// RFC 7983/5761 demultiplexing: an RTP (not RTCP) packet?
fn is_rtp(datagram: &[u8]) -> bool {
    match datagram {
        [b0, b1, ..] if datagram.len() >= 12 => {
            (128..=191).contains(b0) && !(192..=223).contains(b1)
        }
        _ => false,
    }
}

/// SSRC, timestamp and marker of an RTP datagram (in the clear under SRTP).
fn rtp_fields(datagram: &[u8]) -> Option<(u32, u32, bool)> {
    if !is_rtp(datagram) {
        return None;
    }
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = datagram.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    };
    let marker = datagram.get(1).is_some_and(|b| b & 0x80 != 0);
    Some((word(8)?, word(4)?, marker))
}

/// An (S)RTCP receiver report? The first 8 bytes of SRTCP are in the clear.
fn is_receiver_report(datagram: &[u8]) -> bool {
    matches!(datagram, [b0, 201, ..] if (128..=191).contains(b0))
}

/// A webrtc-rs runtime that is tokio with netem on every UDP socket.
#[derive(Debug)]
pub struct NetemRuntime {
    link: Arc<NetemLink>,
}

impl NetemRuntime {
    pub fn new(link: Arc<NetemLink>) -> Self {
        Self { link }
    }
}

impl Runtime for NetemRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = TokioRuntime.wrap_udp_socket(socket)?;
        let (line, queue) = mpsc::unbounded_channel();
        tokio::spawn(delay_line(
            queue,
            Arc::clone(&inner),
            Arc::clone(&self.link),
        ));
        Ok(Arc::new(NetemSocket {
            inner,
            link: Arc::clone(&self.link),
            line,
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
        Box::pin(async move {
            tokio::net::lookup_host(host)
                .await
                .map(|addrs| addrs.collect())
        })
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
        "tokio+netem"
    }
}

/// One datagram waiting in the delay line.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delayed {
    due: Instant,
    order: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
}

struct NetemSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    link: Arc<NetemLink>,
    line: mpsc::UnboundedSender<Delayed>,
}

impl fmt::Debug for NetemSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetemSocket")
            .field("inner", &self.inner)
            .finish()
    }
}

impl AsyncUdpSocket for NetemSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let len = transmit.contents.len();
        let rtp = is_rtp(transmit.contents);
        if rtp {
            self.link.note(transmit.contents, false);
        }
        if self.link.is_vanished()
            || (self.link.media_stopped.load(Ordering::Acquire)
                && transmit
                    .contents
                    .first()
                    .is_some_and(|b| (128..=191).contains(b)))
        {
            self.link.count_vanished();
            return Poll::Ready(Ok(len));
        }
        if !rtp {
            return self.inner.poll_send(cx, transmit);
        }
        let fate = {
            let mut netem = self.link.lock();
            if !netem.config().is_active() {
                drop(netem);
                let sent = self.inner.poll_send(cx, transmit);
                if matches!(sent, Poll::Ready(Ok(_))) {
                    self.link.note(transmit.contents, true);
                }
                return sent;
            }
            netem.decide()
        };
        if let Fate::Send { delay, copies } = fate {
            let due = Instant::now() + delay;
            for _ in 0..copies {
                // The order key keeps FIFO order among equal deadlines.
                let order = ORDER.fetch_add(1, Ordering::Relaxed);
                let _ = self.line.send(Delayed {
                    due,
                    order,
                    to: transmit.destination,
                    bytes: transmit.contents.to_vec(),
                });
            }
        }
        Poll::Ready(Ok(len))
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let polled = self.inner.poll_recv(cx, bufs, meta);
            if let Poll::Ready(Ok(n)) = polled {
                if self.link.is_vanished() {
                    self.link.count_vanished();
                    continue;
                }
                let reports = bufs
                    .iter()
                    .zip(meta.iter())
                    .take(n)
                    .filter(|(buf, m)| is_receiver_report(buf.get(..m.len).unwrap_or_default()))
                    .count();
                self.link.count_receiver_reports(reports as u64);
            }
            return polled;
        }
    }

    fn max_gso_segments(&self) -> usize {
        1
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

static ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sends delayed datagrams when they are due, earliest first.
async fn delay_line(
    mut queue: mpsc::UnboundedReceiver<Delayed>,
    socket: Arc<dyn AsyncUdpSocket>,
    link: Arc<NetemLink>,
) {
    let mut heap: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    loop {
        let next_due = heap.peek().map(|Reverse(d)| d.due);
        tokio::select! {
            queued = queue.recv() => match queued {
                Some(d) => heap.push(Reverse(d)),
                None => return,
            },
            () = sleep_until(next_due) => {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse(d)| d.due <= now) {
                    let Some(Reverse(d)) = heap.pop() else { break };
                    if link.is_vanished() {
                        link.count_vanished();
                        continue;
                    }
                    if socket.send_to(&d.bytes, d.to).await.is_ok() {
                        link.note(&d.bytes, true);
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
