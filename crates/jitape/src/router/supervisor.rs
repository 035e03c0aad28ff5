//! The supervisor of conferences: starts one conference task per room the router decides to
//! record, watches it, and tells the router when it has ended (also when it panicked: its
//! recording's writer still finalizes the files). At start it finds the recordings a previous
//! jitape left unfinished, for the router to continue or finalize.
//!
//! In: [`StartInfo`] from the router. Out: the task's [`InboxSender`], [`Control::Ended`] when
//! the task is over, and finalized leftovers.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{Control, Spawn, StartInfo};
use crate::conference::inbox::{InboxSender, inbox};
use crate::conference::task::{self, ConferenceContext};
use crate::sink;

/// Spawns conference tasks and watches them: a panicking conference still gets its files
/// finalized, and the router still learns that it ended.
pub struct Supervisor {
    ctx: Arc<ConferenceContext>,
    control: mpsc::Sender<Control>,
}

impl Supervisor {
    /// Conference tasks get `ctx`; the router hears on `control` when one has ended.
    pub fn new(ctx: Arc<ConferenceContext>, control: mpsc::Sender<Control>) -> Self {
        Supervisor { ctx, control }
    }

    /// Recordings a previous jitape left unfinished, by room (from their sidecar). Those whose
    /// room cannot be told are finalized at once.
    pub async fn unfinished_recordings(
        &mut self,
        dir: &std::path::Path,
    ) -> Vec<(String, sink::Unfinished)> {
        let dir = dir.to_path_buf();
        let me = self.ctx.instance.clone();
        // Several instances share the directory: what another one writes (or wrote) is its
        // own, and moves only by a takeover (`conference::task`), never at a start.
        let mine = move |u: &sink::Unfinished| match sink::owner::read(&u.paths) {
            Ok(Some(record)) if record.instance != me => {
                info!(file = %u.paths.flac_partial.display(), owner = %record.instance, "an unfinished recording of another instance; left to it");
                false
            }
            _ => true,
        };
        let look = move || {
            sink::find_unfinished(&dir).map(|all| all.into_iter().filter(mine).collect::<Vec<_>>())
        };
        let found = match tokio::task::spawn_blocking(look).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                warn!(error = %e, "cannot look for unfinished recordings");
                return Vec::new();
            }
            Err(e) => {
                warn!(error = %e, "looking for unfinished recordings failed");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for u in found {
            let room = sink::sidecar::read(&u.paths.sidecar_partial)
                .ok()
                .map(|s| s.room.to_lowercase());
            match room {
                Some(room) => {
                    info!(%room, file = %u.paths.flac_partial.display(), "found an unfinished recording; it continues if the conference still runs");
                    out.push((room, u));
                }
                None => self.finalize(u, "interrupted"),
            }
        }
        out
    }
}

impl Spawn for Supervisor {
    fn spawn(&mut self, start: StartInfo) -> InboxSender {
        let (tx, rx) = inbox(1024);
        let StartInfo {
            room,
            generation,
            resume,
        } = start;
        let handle = tokio::spawn(task::run(Arc::clone(&self.ctx), room.clone(), resume, rx));
        let control = self.control.clone();
        tokio::spawn(async move {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                // Its recording's writer finalizes the files (reason `internal-error`).
                error!(%room, "conference task panicked; its recording is finalized by its writer");
            }
            let room = room.to_string();
            let _ = control.send(Control::Ended { room, generation }).await;
        });
        tx
    }

    fn finalize(&mut self, u: sink::Unfinished, reason: &'static str) {
        tokio::task::spawn_blocking(move || match sink::finalize_unfinished(&u, reason) {
            Ok(files) => {
                info!(flac = %files.flac.display(), reason, "unfinished recording finalized")
            }
            Err(e) => {
                error!(dir = %u.paths.dir.display(), error = %e, "could not finalize an unfinished recording")
            }
        });
    }
}
