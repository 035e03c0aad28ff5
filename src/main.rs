//! The `jitape` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jitape", version, about = "Record every Jitsi Meet conference as one FLAC per conference")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file (and JITAPE_* environment overrides) without starting.
    CheckConfig {
        #[arg(long, short, env = "JITAPE_CONFIG", default_value = "config/jitape.toml")]
        config: PathBuf,
    },
    /// Verify a recording and print its sidecar summary.
    Inspect {
        /// The .flac (or .flac.partial) file.
        file: PathBuf,
    },
}

fn load_config(path: &PathBuf) -> anyhow::Result<jitape::config::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    jitape::config::load(&text, std::env::vars())
        .with_context(|| format!("in config file {}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { config } => load_config(&config).map(|c| {
            println!("{}: ok\n{c:#?}", config.display());
        }),
        Command::Inspect { file } => match jitape::sink::inspect::inspect(&file) {
            Ok(report) => {
                println!("{report}");
                if report.problems.is_empty() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("{} problem(s) found", report.problems.len()))
                }
            }
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitape: {e:#}");
            ExitCode::FAILURE
        }
    }
}
