//! What the health task keeps in the state directory, and how it is written: the drains
//! (also published for the peers on every change) and the last known addresses.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::StateDir;
use super::drains::{self, Drains};
use super::hlc::Clock;
use super::resolved::{self, Resolved};
use super::writer::FileWriter;

/// What is kept in the state directory, and how it is written.
pub(crate) struct Kept {
    /// Stamps each drain and undrain made here; observes the stamps of peers' drains.
    pub(crate) clock: Clock,
    drains_out: watch::Sender<Arc<Drains>>,
    /// Held for its lock: no other instance may use the folder while this one runs.
    dir: Option<StateDir>,
    pub(crate) drains: Drains,
    drains_file: Option<Arc<FileWriter>>,
    pub(crate) resolved: Resolved,
    resolved_file: Option<Arc<FileWriter>>,
    written: u64,
}

impl Kept {
    /// What `state` keeps, starting from `drains` and `resolved`.
    pub(crate) fn new(
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
            drains_file: file(drains::FILE_NAME),
            resolved_file: file(resolved::FILE_NAME),
            dir: state,
            drains,
            resolved,
            written: 0,
        }
    }

    /// The state directory, if anything is kept.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(StateDir::path)
    }

    /// Publishes the drains for the peers and writes them off the task's thread; the handle
    /// says whether the write worked.
    pub(crate) fn save_drains(&mut self) -> Option<JoinHandle<std::io::Result<()>>> {
        self.drains_out.send_replace(Arc::new(self.drains.clone()));
        let file = self.drains_file.clone()?;
        self.written += 1;
        let (generation, text) = (self.written, self.drains.text());
        Some(tokio::task::spawn_blocking(move || {
            file.write(generation, &text)
        }))
    }

    /// Writes the last known addresses off the task's thread, logging a failure.
    pub(crate) fn save_resolved(&mut self) {
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
