//! The resolver tasks of DNS-named hosts, by `site/host`: a reload keeps each one whose name
//! and name servers stay, so its schedule is not reset.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::probe::resolve::{self, Job, Resolution};

/// The running resolver tasks.
pub(super) struct Resolvers {
    results: mpsc::Sender<Resolution>,
    running: HashMap<String, (Job, CancellationToken)>,
    all: CancellationToken,
}

impl Resolvers {
    pub(super) fn new(results: mpsc::Sender<Resolution>, all: CancellationToken) -> Self {
        Self {
            results,
            running: HashMap::new(),
            all,
        }
    }

    /// Makes the running tasks exactly `jobs`: keeps those already running, starts the new,
    /// stops the rest. Returns the keys of the tasks started.
    pub(super) fn set(&mut self, jobs: Vec<Job>, tracker: &TaskTracker) -> Vec<String> {
        let mut keep: HashMap<String, (Job, CancellationToken)> = HashMap::new();
        let mut started = Vec::new();
        for job in jobs {
            match self.running.remove(&job.key) {
                Some((old, cancel)) if old == job => {
                    keep.insert(job.key.clone(), (old, cancel));
                }
                other => {
                    if let Some((_, cancel)) = other {
                        cancel.cancel();
                    }
                    let cancel = self.all.child_token();
                    resolve::spawn(tracker, job.clone(), self.results.clone(), cancel.clone());
                    started.push(job.key.clone());
                    keep.insert(job.key.clone(), (job, cancel));
                }
            }
        }
        for (_, (_, cancel)) in self.running.drain() {
            cancel.cancel();
        }
        self.running = keep;
        started
    }

    /// Stops every task.
    pub(super) fn stop_all(&mut self) {
        self.all.cancel();
        self.running.clear();
    }
}
