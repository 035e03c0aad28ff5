//! The running component: wires the XMPP link, the router and the conference tasks together
//! from a [`Config`]. Used by `jitape run`, and in-process by `jitape demo` and the tests.
//!
//! In: a validated configuration. Out: an [`App`] handle to send control messages (record a
//! room, stop one) and to shut down gracefully (every recording finalized, then the link
//! closed). The writer threads every recording's files live on are started here, once. Every
//! conference task is supervised: if one panics, its recording's writer finalizes the files
//! and the rest of the process carries on.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::conference::machine::Settings;
use crate::conference::recording::RecordingSettings;
use crate::conference::task::ConferenceContext;
use crate::config::Config;
use crate::guard::{self, GuardSettings};
use crate::media::MediaSettings;
use crate::metrics::Metrics;
use crate::router::{self, Control, RouterInputs, RouterSettings, Supervisor};
use crate::sink::{self, HookSettings, WriterSettings};
use crate::xmpp::link::{self, LinkSettings};

/// Why the component could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("media.bind = \"auto\": cannot find the local address towards {host}: {source}")]
    NoRoute {
        host: String,
        source: std::io::Error,
    },
    #[error("recording.dir {dir}: {source}")]
    RecordingDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "recording.dir {dir} is not writable by jitape's user (uid {uid}): {source}; make it writable for that uid, e.g. `chown {uid}:{uid} {dir}` (docker: on the host, before the first start; see the deployment guide)"
    )]
    RecordingDirNotWritable {
        dir: PathBuf,
        uid: u32,
        source: std::io::Error,
    },
    #[error("http.bind {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the writer threads: {0}")]
    Writers(std::io::Error),
    #[error("starting the XMPP link's thread: {0}")]
    Link(std::io::Error),
    #[error("starting the memory trimmer thread: {0}")]
    Trimmer(std::io::Error),
}

/// How long `jitape run` waits by default (its `--drain`) after SIGTERM for every recording to
/// be finalized before it exits anyway. A service manager's stop timeout must exceed it plus
/// [`LEAVE_GRACE`] and [`LINK_CLOSE`] (`config/jitape.service`, `TimeoutStopSec=`).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
/// After the drain: the time the rooms' leave presences get to go out before the link closes.
pub const LEAVE_GRACE: Duration = Duration::from_millis(100);
/// After that: the longest [`App::shutdown`] waits for the XMPP link to close.
pub const LINK_CLOSE: Duration = Duration::from_secs(3);

/// A running jitape.
pub struct App {
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
    /// Resolves once the XMPP link (on its own thread) has stopped.
    link: tokio::sync::oneshot::Receiver<()>,
    router: JoinHandle<()>,
    finished: broadcast::Sender<sink::FinalizedFiles>,
    metrics: Arc<Metrics>,
    /// Where the HTTP server listens, if enabled.
    pub http_addr: Option<std::net::SocketAddr>,
    /// Our full JID in rooms.
    pub jid: String,
}

/// The local address the OS would use to reach `host:port` (no packet is sent).
fn local_address_towards(host: &str, port: u16) -> std::io::Result<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect((host, port))?;
    Ok(socket.local_addr()?.ip())
}

/// Fails fast, like docker-jitsi-meet's `check-writable`, when the recording directory
/// refuses a write for a reason that will not go away by itself (ownership, mode, a read-only
/// mount): running unready would only hide it. A full disk is not a reason: the disk guard
/// holds new recordings back until space returns.
fn check_recording_dir(dir: &std::path::Path) -> Result<(), AppError> {
    use std::io::ErrorKind;
    match guard::probe_write(dir) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) => {
            warn!(dir = %dir.display(), error = %e, "the recording directory is full");
            Ok(())
        }
        Err(source) => Err(AppError::RecordingDirNotWritable {
            dir: dir.to_path_buf(),
            uid: rustix::process::geteuid().as_raw(),
            source,
        }),
    }
}

impl App {
    /// Start the component. Returns once the tasks are spawned; the link connects (and
    /// reconnects) in the background.
    pub async fn start(cfg: &Config) -> Result<App, AppError> {
        std::fs::create_dir_all(&cfg.recording.dir).map_err(|source| AppError::RecordingDir {
            dir: cfg.recording.dir.clone(),
            source,
        })?;
        check_recording_dir(&cfg.recording.dir)?;
        let bind = match cfg.media.bind {
            Some(ip) => ip,
            None => local_address_towards(&cfg.xmpp.host, cfg.xmpp.port).map_err(|source| {
                AppError::NoRoute {
                    host: cfg.xmpp.host.clone(),
                    source,
                }
            })?,
        };
        let instance = format!("{:08x}", rand::random::<u32>());
        let jid = format!("{}@{}/{}", cfg.xmpp.user, cfg.xmpp.domain, instance);
        let (outbound_tx, outbound_rx) = mpsc::channel(4096);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (control_tx, control_rx) = mpsc::channel(256);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (finished, _) = broadcast::channel(64);
        let metrics = Arc::new(Metrics::default());
        // Set once, here, before anything reads it.
        let _ = metrics.instance.set(cfg.xmpp.instance.clone());
        let writers =
            sink::WriterPool::start(WriterSettings::new(&cfg.recording), Arc::clone(&metrics))
                .map_err(AppError::Writers)?;

        let link = link::spawn(
            LinkSettings::new(&cfg.xmpp, &cfg.limits),
            outbound_rx,
            events_tx,
            shutdown_rx.clone(),
        )
        .map_err(AppError::Link)?;

        // Several instances: learned from the module's catch-up answers (router).
        let (lease_tx, lease_rx) = watch::channel(None);
        let ctx = Arc::new(ConferenceContext {
            template: Settings::new(cfg, &jid),
            recording: RecordingSettings::new(&cfg.recording),
            media: MediaSettings::new(&cfg.media, bind),
            outbound: outbound_tx.clone(),
            finished: finished.clone(),
            hook: cfg.hook.as_ref().map(HookSettings::from_config),
            metrics: Arc::clone(&metrics),
            writers: Arc::new(writers),
            instance: cfg.xmpp.instance.clone(),
            lease: lease_rx,
        });
        let (ready_tx, ready_rx) = watch::channel(guard::Readiness::default());
        let (disk_tx, disk_rx) = watch::channel(true);
        let (load_tx, load_rx) = watch::channel(true);
        tokio::spawn(crate::load::run(
            cfg.recording.late_window.get(),
            Arc::clone(&metrics),
            load_tx,
            control_tx.clone(),
        ));
        crate::memory::spawn(Arc::clone(&metrics)).map_err(AppError::Trimmer)?;
        tokio::spawn(guard::run(
            GuardSettings::new(&cfg.recording),
            Arc::clone(&metrics),
            ready_tx,
            disk_tx,
        ));
        let http_addr = match cfg.http.bind {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Http { addr, source })?;
                let local = listener.local_addr().ok();
                let state = crate::http::HttpState {
                    control: control_tx.clone(),
                    metrics: Arc::clone(&metrics),
                    ready: ready_rx,
                    token: cfg.http.token.clone(),
                    muc_domains: cfg.xmpp.muc_domains.clone(),
                    recordings: cfg.recording.dir.clone(),
                };
                tokio::spawn(crate::http::serve(listener, state, shutdown_rx.clone()));
                local
            }
            None => None,
        };
        let mut spawner = Supervisor::new(ctx, control_tx.clone());
        let unfinished = spawner.unfinished_recordings(&cfg.recording.dir).await;
        let router = tokio::spawn(router::run(
            RouterSettings::new(cfg, &jid),
            RouterInputs {
                unfinished,
                metrics: Arc::clone(&metrics),
                disk_ok: disk_rx,
                load_ok: load_rx,
                lease: lease_tx,
            },
            events_rx,
            outbound_tx,
            control_rx,
            spawner,
        ));
        info!(%jid, %bind, dir = %cfg.recording.dir.display(), "jitape started");
        Ok(App {
            control: control_tx,
            shutdown: shutdown_tx,
            link,
            router,
            finished,
            metrics,
            http_addr,
            jid,
        })
    }

    /// The process-wide metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Subscribe to finalized recordings.
    pub fn finished(&self) -> broadcast::Receiver<sink::FinalizedFiles> {
        self.finished.subscribe()
    }

    /// A sender for control messages (record/stop a room).
    pub fn control(&self) -> mpsc::Sender<Control> {
        self.control.clone()
    }

    /// Finalize every recording (leaving each room), then close the link. Waits at most
    /// `drain` for the conferences; whatever is not finalized by then stays `.partial` and is
    /// repaired on the next start.
    pub async fn shutdown(self, drain: Duration) {
        let (done_tx, done_rx) = oneshot::channel();
        if self
            .control
            .send(Control::Shutdown { done: done_tx })
            .await
            .is_ok()
            && tokio::time::timeout(drain, done_rx).await.is_err()
        {
            warn!(
                ?drain,
                "drain timed out; unfinished recordings stay .partial"
            );
        }
        // Let the leave presences go out before the link closes.
        tokio::time::sleep(LEAVE_GRACE).await;
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(LINK_CLOSE, self.link).await;
        self.router.abort();
    }
}
