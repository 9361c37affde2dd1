//! What the health task keeps in the state directory, and how it is written: the drains
//! (also published for the peers on every change) and the last known addresses.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::StateDir;
use crate::state::drains::Drains;
use crate::state::hlc::Clock;
use crate::state::resolved::Resolved;
use crate::state::writer::FileWriter;

/// What is kept in the state directory, and how it is written.
pub(super) struct Kept {
    /// Stamps each drain and undrain made here; observes the stamps of peers' drains.
    pub(super) clock: Clock,
    drains_out: watch::Sender<Arc<Drains>>,
    /// Held for its lock: no other instance may use the folder while this one runs.
    pub(super) _dir: Option<StateDir>,
    pub(super) drains: Drains,
    drains_file: Option<Arc<FileWriter>>,
    pub(super) resolved: Resolved,
    resolved_file: Option<Arc<FileWriter>>,
    written: u64,
}

impl Kept {
    /// What `state` keeps, starting from `drains` and `resolved`.
    pub(super) fn new(
        state: Option<StateDir>,
        mut drains: Drains,
        resolved: Resolved,
        clock: Clock,
        drains_out: watch::Sender<Arc<Drains>>,
    ) -> Self {
        let file = |name: &str| {
            state
                .as_ref()
                .map(|d| Arc::new(FileWriter::new(d.path().join(name))))
        };
        drains.purge(std::time::SystemTime::now());
        drains_out.send_replace(Arc::new(drains.clone()));
        Self {
            clock,
            drains_out,
            drains_file: file(crate::state::drains::FILE_NAME),
            resolved_file: file(crate::state::resolved::FILE_NAME),
            _dir: state,
            drains,
            resolved,
            written: 0,
        }
    }

    /// Publishes the drains for the peers and writes them off the task's thread; the handle
    /// says whether the write worked.
    pub(super) fn save_drains(&mut self) -> Option<JoinHandle<std::io::Result<()>>> {
        self.drains_out.send_replace(Arc::new(self.drains.clone()));
        let file = self.drains_file.clone()?;
        self.written += 1;
        let (generation, text) = (self.written, self.drains.text());
        Some(tokio::task::spawn_blocking(move || {
            file.write(generation, &text)
        }))
    }

    /// Writes the last known addresses off the task's thread, logging a failure.
    pub(super) fn save_resolved(&mut self) {
        let Some(file) = self.resolved_file.clone() else {
            return;
        };
        self.written += 1;
        let (generation, text) = (self.written, self.resolved.text());
        tokio::task::spawn_blocking(move || {
            if let Err(error) = file.write(generation, &text) {
                tracing::warn!(file = %file.path().display(), %error, "cannot save the last known addresses");
            }
        });
    }
}
