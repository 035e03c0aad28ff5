//! A whole loopback deployment in one process: the in-process XMPP server, a jitape
//! ([`jitape::app::App`]) connected to it as a component, and the simulated Jitsi side
//! ([`World`]) as another component. `jitape demo`, the scenario tests and the benchmark
//! drive conferences through it; nothing listens anywhere but 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::broadcast;

use super::plan::ConferencePlan;
use super::router::{SimServer, SimServerConfig};
use super::world::{ConferenceOutcome, SimError, World, WorldSettings};
use jitape::app::{App, AppError};
use jitape::config::{self, Config, ConfigError};
use jitape::sink::FinalizedFiles;

pub const RECORDER_DOMAIN: &str = "recorder.localhost";
pub const SIM_DOMAIN: &str = "sim.localhost";
pub const MUC_DOMAIN: &str = "conference.localhost";
pub const RECORDER_SECRET: &str = "loopback-recorder-secret";
pub const SIM_SECRET: &str = "loopback-sim-secret";

/// The in-process server of a loopback deployment: jitape's and the simulation's components
/// and one MUC service on which the simulated focus is an admin.
pub fn server_config() -> SimServerConfig {
    SimServerConfig {
        components: vec![
            (RECORDER_DOMAIN.into(), RECORDER_SECRET.into()),
            (SIM_DOMAIN.into(), SIM_SECRET.into()),
        ],
        muc_domains: vec![MUC_DOMAIN.into()],
        admins: vec![format!("focus@{SIM_DOMAIN}")],
        server_domains: vec!["localhost".into()],
        ..SimServerConfig::default()
    }
}

/// Why the loopback could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error("in-process XMPP server: {0}")]
    Server(std::io::Error),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("jitape: {0}")]
    App(#[from] AppError),
    #[error("simulation: {0}")]
    Sim(#[from] SimError),
    #[error("no finalized recording of {room} within {waited:?}")]
    NotFinalized { room: String, waited: Duration },
}

/// The jitape configuration for a loopback deployment (the real TOML path, so the demo
/// exercises the same validation as `jitape run`). `extra` is appended TOML.
pub fn jitape_config(
    port: u16,
    dir: &Path,
    sample_rate: u32,
    extra: &str,
) -> Result<Config, ConfigError> {
    let text = format!(
        r#"
[xmpp]
host = "127.0.0.1"
port = {port}
domain = "{RECORDER_DOMAIN}"
secret = "{RECORDER_SECRET}"
muc_domains = ["{MUC_DOMAIN}"]
reconnect_min = "100ms"
reconnect_max = "2s"
[recording]
dir = "{}"
sample_rate = {sample_rate}
{extra}
{media}
{http}
"#,
        dir.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
        // Loopback media, unless the caller configures media itself (then with a bind).
        media = if extra.contains("[media]") {
            ""
        } else {
            "[media]\nbind = \"127.0.0.1\""
        },
        // Any free port, unless the caller configures HTTP itself.
        http = if extra.contains("[http]") {
            ""
        } else {
            "[http]\nbind = \"127.0.0.1:0\""
        },
    );
    config::load(&text, std::iter::empty())
}

/// The running loopback deployment.
pub struct Loopback {
    pub server: SimServer,
    pub app: Option<App>,
    pub world: World,
    pub dir: PathBuf,
    finished: broadcast::Receiver<FinalizedFiles>,
    /// Finalized recordings seen while waiting for another room.
    seen: Vec<FinalizedFiles>,
}

impl Loopback {
    /// Start the server, jitape and the simulation; recordings go to `dir`.
    pub async fn start(dir: &Path, sample_rate: u32) -> Result<Loopback, LoopbackError> {
        Self::start_with(dir, sample_rate, "").await
    }

    /// Like [`Loopback::start`], with extra jitape configuration (TOML appended after the
    /// `[recording]` section, e.g. `stems = true` or a `[hook]` table).
    pub async fn start_with(
        dir: &Path,
        sample_rate: u32,
        extra: &str,
    ) -> Result<Loopback, LoopbackError> {
        let server = SimServer::start(server_config())
            .await
            .map_err(LoopbackError::Server)?;
        let port = server.component_addr().port();
        let cfg = jitape_config(port, dir, sample_rate, extra)?;
        let app = App::start(&cfg).await?;
        let finished = app.finished();
        let world = World::connect(WorldSettings {
            host: "127.0.0.1".into(),
            port,
            domain: SIM_DOMAIN.into(),
            secret: SIM_SECRET.into(),
            muc_domain: MUC_DOMAIN.into(),
            recorder_domain: RECORDER_DOMAIN.into(),
        })
        .await?;
        Ok(Loopback {
            server,
            app: Some(app),
            world,
            dir: dir.to_path_buf(),
            finished,
            seen: Vec::new(),
        })
    }

    /// Play a conference and wait for jitape to finalize its recording.
    pub async fn play(
        &mut self,
        plan: ConferencePlan,
    ) -> Result<(ConferenceOutcome, FinalizedFiles), LoopbackError> {
        let room = plan.room.to_lowercase();
        let outcome = self.world.run(plan).await?;
        let files = self.wait_finalized(&room, Duration::from_secs(20)).await?;
        Ok((outcome, files))
    }

    /// Wait for the finalized recording of `room`.
    pub async fn wait_finalized(
        &mut self,
        room: &str,
        limit: Duration,
    ) -> Result<FinalizedFiles, LoopbackError> {
        let not_found = || LoopbackError::NotFinalized {
            room: room.to_string(),
            waited: limit,
        };
        if let Some(i) = self
            .seen
            .iter()
            .position(|f| f.room.eq_ignore_ascii_case(room))
        {
            return Ok(self.seen.remove(i));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.finished.recv()).await {
                Ok(Ok(files)) if files.room.eq_ignore_ascii_case(room) => return Ok(files),
                Ok(Ok(other)) => self.seen.push(other),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return Err(not_found()),
            }
        }
    }

    /// jitape's process-wide metrics.
    pub fn metrics(&self) -> Option<std::sync::Arc<jitape::metrics::Metrics>> {
        self.app.as_ref().map(App::metrics)
    }

    /// A sender for control messages to jitape's router (record, stop, list).
    pub fn control(&self) -> Option<tokio::sync::mpsc::Sender<jitape::router::Control>> {
        self.app.as_ref().map(App::control)
    }

    /// Stop everything (jitape finalizes whatever it still records).
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown(Duration::from_secs(10)).await;
        }
        self.world.close().await;
        self.server.shutdown().await;
    }
}
