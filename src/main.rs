//! The `jitape` command line: `run`, `demo`, `check-config`, `inspect`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "jitape",
    version,
    about = "Record every Jitsi Meet conference as one FLAC per conference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the component: connect to Prosody and record every conference.
    Run {
        #[arg(
            long,
            short,
            env = "JITAPE_CONFIG",
            default_value = "config/jitape.toml"
        )]
        config: PathBuf,
        /// How long SIGTERM waits for recordings to be finalized before exiting anyway.
        // = jitape::app::DEFAULT_DRAIN (tests/operations.rs checks the two agree).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        drain: Duration,
    },
    /// Record a scripted loopback conference (no Jitsi, no Prosody needed) and check it.
    Demo {
        /// Where the recording goes.
        #[arg(long, default_value = "recordings")]
        out: PathBuf,
        /// WAV files to use as the speakers' voices instead of tones (cycled).
        #[arg(long = "wav")]
        wavs: Vec<PathBuf>,
        #[arg(long, default_value_t = 48_000)]
        sample_rate: u32,
    },
    /// Check a configuration file (and JITAPE_* environment overrides) without starting;
    /// with --live also connect to Prosody and check the deployment (component handshake,
    /// the Prosody module on every MUC domain, the recording directory).
    CheckConfig {
        #[arg(
            long,
            short,
            env = "JITAPE_CONFIG",
            default_value = "config/jitape.toml"
        )]
        config: PathBuf,
        #[arg(long)]
        live: bool,
    },
    /// Measure jitape's cost against a simulated deployment (jitape runs as its own process).
    Bench(jitape_cli::bench::BenchArgs),
    /// Verify a recording and print its sidecar summary.
    Inspect {
        /// The .flac (or .flac.partial) file.
        file: PathBuf,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    jitape::config::parse_duration(s)
}

fn load_config(path: &std::path::Path) -> anyhow::Result<jitape::config::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    warn_if_secrets_are_exposed(path, &text);
    jitape::config::load(&text, std::env::vars())
        .with_context(|| format!("in config file {}", path.display()))
}

/// A config file holding a secret that every local user may read is worth a warning (it
/// still loads: refusing would break a working deployment on upgrade).
fn warn_if_secrets_are_exposed(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    let secrets = jitape::config::secrets_in(text);
    if mode & 0o004 != 0 && !secrets.is_empty() {
        eprintln!(
            "jitape: warning: {} holds {} and is readable by every user (mode {mode:03o}); \
             chmod o-r it, or pass secrets in the environment (JITAPE_XMPP_SECRET, JITAPE_HTTP_TOKEN)",
            path.display(),
            secrets.join(" and ")
        );
    }
}

/// webrtc-rs logs routine protocol noise (early STUN before credentials, DTLS server name)
/// at warn; jitape reports media state itself.
const DEFAULT_LOG_FILTER: &str =
    "info,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error,rtc_interceptor=error";

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JITAPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { config, live } => load_config(&config).and_then(|c| {
            let text = std::fs::read_to_string(&config)?;
            let effective = jitape::config::effective_toml(&text, std::env::vars())?;
            println!(
                "# {}: ok. The configuration in effect:\n{effective}",
                config.display()
            );
            if !live {
                return Ok(());
            }
            let report = runtime()?.block_on(jitape_cli::check::live(&c));
            println!("\n{report}");
            anyhow::ensure!(report.ok(), "the deployment is not ready for jitape");
            Ok(())
        }),
        Command::Inspect { file } => inspect(&file),
        Command::Bench(args) => {
            runtime().and_then(|rt| rt.block_on(args.run()).map_err(anyhow::Error::from))
        }
        Command::Run { config, drain } => load_config(&config).and_then(|c| {
            init_logs();
            runtime()?.block_on(run(c, drain))
        }),
        Command::Demo {
            out,
            wavs,
            sample_rate,
        } => {
            init_logs();
            runtime().and_then(|rt| rt.block_on(jitape_cli::demo::run(&out, &wavs, sample_rate)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitape: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A fixed-size runtime: the thread count never depends on the number of conferences.
///
/// Idle blocking threads exit after 3 s: the disk guard borrows one every 2 s
/// (`guard::PERIOD`), and with tokio's default 10 s keep-alive its wake-ups rotate over
/// every idle thread, so a burst of file work (20 conferences finalizing at once) would keep
/// `max_blocking_threads` threads alive for good.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(4)
        .thread_keep_alive(std::time::Duration::from_secs(3))
        .thread_name("jitape")
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn inspect(file: &std::path::Path) -> anyhow::Result<()> {
    let report = jitape::sink::inspect::inspect(file)?;
    println!("{report}");
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} problem(s) found",
            report.problems.len()
        ))
    }
}

async fn run(config: jitape::config::Config, drain: Duration) -> anyhow::Result<()> {
    let app = jitape::app::App::start(&config).await?;
    wait_for_signal().await?;
    info!(
        ?drain,
        "signal received: finalizing recordings (a second signal exits at once)"
    );
    let second = tokio::spawn(async {
        if wait_for_signal().await.is_ok() {
            warn!("second signal: exiting now; unfinished recordings stay .partial");
            std::process::exit(130);
        }
    });
    app.shutdown(drain).await;
    second.abort();
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
