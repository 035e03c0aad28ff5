//! Giving freed memory back to the system once conferences end.
//!
//! glibc's malloc keeps what a thread freed in that thread's arena for reuse; with tokio's
//! workers and the writer threads all allocating, the resident size after 100 conferences
//! stayed at ~150 MiB (idle: ~10 MiB) although almost all of it was free. `malloc_trim(0)`
//! returns the free pages of every arena. In: the count of finished conferences
//! ([`crate::metrics::Metrics::conferences_finished`]). Out: a trim after conferences ended,
//! at most once per [`CHECK_EVERY`], on a thread of its own (it walks the heap; never on the
//! runtime).

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

/// How often the trimmer looks whether conferences ended.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// When to trim: whenever the number of finished conferences moved since the last look.
/// A trim with nothing new to free would only cost a walk over the heap.
#[derive(Debug, Default)]
pub struct Trimmer {
    seen: u64,
}

impl Trimmer {
    /// Whether to trim now, given the finished-conference count.
    pub fn due(&mut self, finished: u64) -> bool {
        let due = finished != self.seen;
        self.seen = finished;
        due
    }
}

/// Start the trimmer thread (it lives as long as the process).
pub fn spawn(metrics: Arc<Metrics>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("jitape-trim".into())
        .spawn(move || {
            let mut trimmer = Trimmer::default();
            loop {
                std::thread::sleep(CHECK_EVERY);
                if trimmer.due(metrics.conferences_finished.get()) {
                    let released = release();
                    tracing::debug!(released, "freed memory returned to the system");
                }
            }
        })
        .map(|_| ())
}

/// Return free heap pages to the system; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks glibc's own arenas under their
    // locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory on their own terms; nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() -> bool {
    false
}

#[cfg(test)]
mod tests;
