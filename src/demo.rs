//! `jitape demo`: record a scripted loopback conference on the embedded default and show
//! what came out — where the files are, who was heard when, and whether that matches the
//! script. Needs no Jitsi and no Prosody.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use jitape::sink::{self, sidecar};
use jitape_sim::analyze::check_recording;
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::plan::ConferencePlan;

/// Record the demo conference into `out` and print a summary. Fails if the recording does
/// not match the script.
pub async fn run(out: &Path, wavs: &[PathBuf], sample_rate: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .context("resolving the output directory")?;
    let room = format!("demo{:04x}@{MUC_DOMAIN}", rand::random::<u16>());
    let plan = ConferencePlan::demo(&room).with_wavs(wavs);
    println!(
        "jitape demo: recording a {:.0} s loopback conference in {} ({} speakers)…",
        plan.end_at.as_secs_f64(),
        room,
        plan.speakers.len()
    );
    let mut lb = Loopback::start(&out, sample_rate).await?;
    let played = lb.play(plan).await;
    lb.stop().await;
    let (outcome, files) = played?;

    println!("\nrecording: {}", files.flac.display());
    println!("sidecar:   {}", files.sidecar.display());
    match Command::new("flac")
        .args(["-t", "-s"])
        .arg(&files.flac)
        .status()
    {
        Ok(s) if s.success() => println!("flac -t:   ok"),
        Ok(s) => anyhow::bail!("flac -t rejected the recording ({s})"),
        Err(_) => println!("flac -t:   (flac not installed; skipped)"),
    }
    let report = sink::inspect(&files.flac)?;
    println!("\n{report}");
    let sc = sidecar::read(&files.sidecar)?;
    if wavs.is_empty() {
        let check = check_recording(&files.flac, &sc, &outcome).map_err(anyhow::Error::msg)?;
        let t = &check.tolerances;
        println!(
            "\nagainst the script (edges ±{} ms, no hole of {} ms or more, level ±{} dB, pitch ±{} %, silence elsewhere):\n{check}",
            t.edge.as_millis(),
            t.hole.as_millis(),
            t.level_db,
            t.pitch * 100.0
        );
        anyhow::ensure!(check.ok(), "the recording does not match the script");
        println!("\nok: every speaker was heard exactly when scheduled");
    }
    Ok(())
}
