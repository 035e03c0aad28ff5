//! `jitape run` as a separate process, the way operators run it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

pub struct JitapeProcess {
    /// The `jitape` binary (a test passes `env!("CARGO_BIN_EXE_jitape")`).
    bin: PathBuf,
    child: Option<Child>,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl JitapeProcess {
    /// Write `config_text` next to `log_dir` and start `bin run --config` on it.
    pub fn spawn(bin: &str, config_text: &str, log_dir: &Path) -> JitapeProcess {
        let config = log_dir.join("jitape.toml");
        fs::write(&config, config_text).unwrap();
        let mut p = JitapeProcess {
            bin: PathBuf::from(bin),
            child: None,
            config,
            log: log_dir.join("jitape.log"),
        };
        p.start();
        p
    }

    /// (Re)start the process on the same config; the log is appended to.
    pub fn start(&mut self) {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env(
                "JITAPE_LOG",
                "info,jitape=debug,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("jitape binary");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM and wait (bounded); returns the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill_process(Pid::from_child(&child), Signal::TERM);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = child.try_wait().ok().flatten() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// `kill -9`: no chance to finalize anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JitapeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Wait until a finalized recording (`.flac` + `.json`) of `room` exists under `dir`.
pub async fn wait_for_final(dir: &Path, room: &str, limit: Duration) -> Option<(PathBuf, PathBuf)> {
    let room_dir = dir.join(jitape::sink::room_dir_name(room));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let json: Vec<PathBuf> = super::files_with_suffix(&room_dir, ".json");
        if let Some(sidecar) = json.last() {
            let flac = sidecar.with_extension("flac");
            if flac.exists() {
                return Some((flac, sidecar.clone()));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Threads and open file descriptors of a running process (from /proc); an error when the
/// process is gone or a zombie (exited, not yet reaped), never a count of zero.
pub fn threads_and_fds(pid: u32) -> Result<(usize, usize), String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("process {pid} is not running: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| format!("process {pid}: no {name} in /proc/{pid}/status"))
    };
    let state = field("State:")?;
    if state.starts_with('Z') || state.starts_with('X') {
        return Err(format!("process {pid} has exited ({state})"));
    }
    let threads = field("Threads:")?
        .parse()
        .map_err(|e| format!("process {pid}: Threads: {e}"))?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("process {pid}: /proc/{pid}/fd: {e}"))?
        .count();
    Ok((threads, fds))
}

/// The idle thread and descriptor counts of a running process: two samples `settle` apart
/// that agree (so a thread that was about to exit is not counted), within `limit`.
pub fn idle_counts(pid: u32, settle: Duration, limit: Duration) -> Result<(usize, usize), String> {
    let deadline = Instant::now() + limit;
    let mut last = threads_and_fds(pid)?;
    loop {
        std::thread::sleep(settle);
        let now = threads_and_fds(pid)?;
        if now == last {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "process {pid} never settled: {last:?} then {now:?}"
            ));
        }
        last = now;
    }
}

/// The names of the threads of process `pid` (`/proc/<pid>/task/*/comm`), sorted.
pub fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
