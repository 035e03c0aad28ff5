//! The finalize hook: an operator's command run after a conference's files are final.
//!
//! In: a [`HookSettings`] (program, arguments, timeout) and the [`FinalizedFiles`]. Out: a
//! [`HookOutcome`] (exit status, bounded stdout/stderr, time taken). The command gets the
//! configured arguments followed by the FLAC path, the sidecar path and the stem paths, and the
//! environment variables `JITAPE_FLAC`, `JITAPE_SIDECAR`, `JITAPE_ROOM`, `JITAPE_ROOM_DIR`,
//! `JITAPE_MEETING_ID` (empty if unknown) and `JITAPE_STEMS` (stem paths, one per line).
//! Every other inherited `JITAPE_*` variable is removed, so configuration secrets passed through
//! the environment never reach the hook.
//!
//! The hook runs in its own process group; on timeout the whole group is killed and reaped.
//! [`run_hook`] never panics and never blocks past `timeout` + a short grace; callers spawn it
//! as its own task so a slow hook never delays another conference.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How long to wait for the output pipes after the hook's process exited or was killed.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// The configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
    /// Bytes of stdout and of stderr kept (the rest is read and dropped).
    pub max_output: usize,
}

impl HookSettings {
    /// The hook from `[hook]`.
    pub fn from_config(hook: &crate::config::HookConfig) -> Self {
        Self::new(hook.command.clone(), hook.args.clone(), hook.timeout)
    }

    pub fn new(program: impl Into<PathBuf>, args: Vec<String>, timeout: Duration) -> Self {
        HookSettings {
            program: program.into(),
            args,
            timeout,
            max_output: 64 << 10,
        }
    }
}

/// The files of a finished conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedFiles {
    pub room: String,
    pub room_dir: String,
    pub meeting_id: Option<String>,
    pub flac: PathBuf,
    pub sidecar: PathBuf,
    pub stems: Vec<PathBuf>,
}

/// How the hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookStatus {
    /// Exit status 0.
    Success,
    /// A non-zero exit code, or killed by a signal (`code` is then `None`).
    Failed {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// Still running after the timeout: killed (with its process group).
    TimedOut,
    /// It could not be started (missing program, permissions) or waited for.
    SpawnFailed(String),
}

/// What happened when the hook ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub status: HookStatus,
    pub stdout: String,
    pub stderr: String,
    /// Some output was beyond `max_output` and dropped.
    pub output_truncated: bool,
    pub elapsed: Duration,
}

impl HookOutcome {
    pub fn is_success(&self) -> bool {
        self.status == HookStatus::Success
    }
}

/// Runs the hook for `files` (see the module doc).
pub async fn run_hook(cfg: &HookSettings, files: &FinalizedFiles) -> HookOutcome {
    let started = Instant::now();
    let inherited = std::env::vars_os().map(|(k, _)| k);
    let mut child = match command(cfg, files, inherited).spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(program = %cfg.program.display(), error = %e, "finalize hook did not start");
            return HookOutcome {
                status: HookStatus::SpawnFailed(e.to_string()),
                stdout: String::new(),
                stderr: String::new(),
                output_truncated: false,
                elapsed: started.elapsed(),
            };
        }
    };
    let pid = child.id();
    let out = tokio::spawn(read_bounded(child.stdout.take(), cfg.max_output));
    let err = tokio::spawn(read_bounded(child.stderr.take(), cfg.max_output));
    let status = match tokio::time::timeout(cfg.timeout, child.wait()).await {
        Ok(Ok(st)) => exit_status(st),
        Ok(Err(e)) => HookStatus::SpawnFailed(format!("wait: {e}")),
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await; // the leader, in case the group kill failed; reaps it
            HookStatus::TimedOut
        }
    };
    let (stdout, t1) = collect(out).await;
    let (stderr, t2) = collect(err).await;
    let outcome = HookOutcome {
        status,
        stdout,
        stderr,
        output_truncated: t1 || t2,
        elapsed: started.elapsed(),
    };
    log_outcome(cfg, &outcome);
    outcome
}

/// The hook's command; `inherited` are the names of the variables of jitape's environment.
fn command(
    cfg: &HookSettings,
    files: &FinalizedFiles,
    inherited: impl Iterator<Item = OsString>,
) -> Command {
    let mut cmd = Command::new(&cfg.program);
    cmd.args(&cfg.args)
        .arg(&files.flac)
        .arg(&files.sidecar)
        .args(&files.stems);
    for key in inherited {
        if key.to_string_lossy().starts_with("JITAPE_") {
            cmd.env_remove(key);
        }
    }
    let mut stems = OsString::new();
    for (i, s) in files.stems.iter().enumerate() {
        if i > 0 {
            stems.push("\n");
        }
        stems.push(s);
    }
    cmd.env("JITAPE_FLAC", &files.flac)
        .env("JITAPE_SIDECAR", &files.sidecar)
        .env("JITAPE_ROOM", &files.room)
        .env("JITAPE_ROOM_DIR", &files.room_dir)
        .env(
            "JITAPE_MEETING_ID",
            files.meeting_id.as_deref().unwrap_or(""),
        )
        .env("JITAPE_STEMS", stems)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

fn exit_status(st: ExitStatus) -> HookStatus {
    use std::os::unix::process::ExitStatusExt;
    if st.success() {
        HookStatus::Success
    } else {
        HookStatus::Failed {
            code: st.code(),
            signal: st.signal(),
        }
    }
}

/// SIGKILL to the hook's process group (its pgid is its pid).
fn kill_group(pid: Option<u32>) {
    let pid = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Reads `r` to its end, keeping the first `max` bytes.
async fn read_bounded<R: AsyncRead + Unpin>(r: Option<R>, max: usize) -> (Vec<u8>, bool) {
    let Some(mut r) = r else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                let take = n.min(room);
                kept.extend_from_slice(buf.get(..take).unwrap_or(&[]));
                truncated |= take < n;
            }
        }
    }
    (kept, truncated)
}

/// Waits a short grace for a pipe reader (a leftover grandchild may hold the pipe open).
async fn collect(task: tokio::task::JoinHandle<(Vec<u8>, bool)>) -> (String, bool) {
    let abort = task.abort_handle();
    match tokio::time::timeout(PIPE_GRACE, task).await {
        Ok(Ok((bytes, truncated))) => (String::from_utf8_lossy(&bytes).into_owned(), truncated),
        Ok(Err(_)) => (String::new(), false),
        Err(_) => {
            abort.abort();
            (String::new(), true)
        }
    }
}

fn log_outcome(cfg: &HookSettings, o: &HookOutcome) {
    let ms = o.elapsed.as_millis() as u64;
    match &o.status {
        HookStatus::Success => tracing::info!(elapsed_ms = ms, "finalize hook succeeded"),
        other => tracing::warn!(program = %cfg.program.display(), status = ?other,
            elapsed_ms = ms, stderr = %o.stderr.trim_end(), "finalize hook failed"),
    }
    tracing::debug!(stdout = %o.stdout.trim_end(), "finalize hook output");
}

#[cfg(test)]
mod tests;
