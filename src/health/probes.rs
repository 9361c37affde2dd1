//! The probe set: one probe task per address, each with an id that stays with it for its life,
//! so that a reload keeps the tasks of addresses that stay — their schedule and the probe they
//! may have in flight — and starts and stops only what changed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::probe::{self, ProbeContext, ProbeSettings};
use crate::topology::HostId;

/// Where and how to probe.
pub(super) struct Destination {
    pub(super) addr: IpAddr,
    pub(super) port: u16,
    /// The interface of a link-local address, else 0.
    pub(super) scope_id: u32,
    pub(super) settings: Arc<ProbeSettings>,
}

/// A running probe task.
#[derive(Debug)]
pub(super) struct ProbeHandle {
    pub(super) id: u64,
    pub(super) port: u16,
    pub(super) scope_id: u32,
    pub(super) settings: Arc<ProbeSettings>,
    cancel: CancellationToken,
    /// Brings the next probe forward.
    pub(super) wake: Arc<Notify>,
}

impl ProbeHandle {
    /// Whether a probe made with these would behave as this task's do.
    pub(super) fn probes_like(&self, port: u16, scope_id: u32, settings: &ProbeSettings) -> bool {
        self.port == port && self.scope_id == scope_id && *self.settings == *settings
    }
}

/// Every running probe task, and the host each belongs to now.
pub(super) struct Probes {
    cx: ProbeContext,
    next_id: u64,
    owners: FxHashMap<u64, HostId>,
    /// Cancels every probe task at once (shutdown).
    all: CancellationToken,
}

impl Probes {
    pub(super) fn new(cx: ProbeContext, all: CancellationToken) -> Self {
        Self {
            cx,
            next_id: 1,
            owners: FxHashMap::default(),
            all,
        }
    }

    /// Starts probing `to` for `host` after `first_delay`, then as the health task says
    /// (every `interval` should it not answer).
    pub(super) fn start(
        &mut self,
        host: HostId,
        to: Destination,
        first_delay: Duration,
        interval: Duration,
    ) -> ProbeHandle {
        let id = self.next_id;
        self.next_id += 1;
        let cancel = self.all.child_token();
        let target = probe::Target {
            id,
            addr: to.addr,
            port: to.port,
            scope_id: to.scope_id,
            settings: to.settings.clone(),
        };
        let wake = probe::spawn(&self.cx, target, first_delay, interval, cancel.clone());
        self.owners.insert(id, host);
        ProbeHandle {
            id,
            port: to.port,
            scope_id: to.scope_id,
            settings: to.settings,
            cancel,
            wake,
        }
    }

    /// Stops a probe task; its reports, if any are in flight, are ignored.
    pub(super) fn stop(&mut self, handle: &ProbeHandle) {
        handle.cancel.cancel();
        self.owners.remove(&handle.id);
    }

    /// Records that a kept task now belongs to `host` (hosts are renumbered by a reload).
    pub(super) fn reassign(&mut self, handle: &ProbeHandle, host: HostId) {
        self.owners.insert(handle.id, host);
    }

    /// The host a report's task belongs to, if it still runs.
    pub(super) fn owner(&self, id: u64) -> Option<HostId> {
        self.owners.get(&id).copied()
    }

    pub(super) fn tracker(&self) -> &tokio_util::task::TaskTracker {
        &self.cx.tracker
    }

    /// Stops every task.
    pub(super) fn stop_all(&mut self) {
        self.all.cancel();
        self.owners.clear();
    }
}
