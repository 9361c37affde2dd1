//! The health task: sole owner of every address's verdict, and sole publisher of snapshots.
//!
//! Probe reports, resolutions of DNS-named hosts, blocklist lookups and operator commands
//! arrive on channels; after each batch, if anything the answers depend on changed, a new
//! snapshot is built and swapped in. At start-up, publishing (and so DNS) waits for the first probe round: every
//! address's first verdict, bounded by the longest a probe can take.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustc_hash::FxHashSet;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::command::Command;
use super::hysteresis::Thresholds;
use super::listings::Listings;
use super::probes::Probes;
use super::publish::Publisher;
use super::resolvers::Resolvers;
use super::runtime::HostRuntime;
use crate::answer::Snapshot;
use crate::events::EventLog;
use crate::loaded::Loaded;
use crate::metrics::{AddressLabels, Metrics};
use crate::probe::{ProbeContext, ProbeReport};
use crate::state::StateDir;
use crate::state::drains::Drains;
use crate::state::hlc::Clock;
use crate::state::kept::Kept;
use crate::state::resolved::Resolved;

/// Time granted to the start-up round beyond the longest probe, before serving anyway.
pub(super) const ROUND_MARGIN: Duration = Duration::from_millis(500);

/// The start-up round: what it waits for, until when.
pub(super) struct Round {
    pub(super) until: Instant,
    /// Addresses whose first probe has not reported.
    pub(super) probes: usize,
    /// DNS-named hosts whose first resolution has not come.
    pub(super) resolutions: FxHashSet<String>,
}

/// The health task's state.
pub struct HealthTask {
    pub(super) loaded: Loaded,
    pub(super) hosts: Vec<HostRuntime>,
    pub(super) probes: Probes,
    pub(super) resolvers: Resolvers,
    pub(super) listings: Listings,
    pub(super) publisher: Publisher,
    pub(super) kept: Kept,
    pub(super) round: Option<Round>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) events: EventLog,
    /// The `smarthostd_tlsa_mismatch` series exported now: one per address of a pinned host.
    pub(super) key_series: FxHashSet<AddressLabels>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
}

/// What the task needs from the server.
pub struct Wiring {
    /// Where each new generation of answers is published.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Woken after each publish (NOTIFY to secondaries waits on it).
    pub published: Arc<tokio::sync::Notify>,
    /// The probe, health and blocklist series the task writes.
    pub metrics: Arc<Metrics>,
    /// What probe tasks are started with: the report channel, the bound on probes in flight, the
    /// tracker.
    pub probes: ProbeContext,
    /// Probe results, from every probe task.
    pub reports: mpsc::Receiver<ProbeReport>,
    /// Operator requests, from the admin `Control`.
    pub commands: mpsc::Receiver<Command>,
    /// Set to `true` once the first probe round is done: DNS starts then, and `/readyz` says ready.
    pub ready: watch::Sender<bool>,
    /// The locked state directory, or `None` to keep nothing (tests of the answer logic).
    pub state: Option<StateDir>,
    /// The drains read from it at start.
    pub drains: Drains,
    /// Stamps every drain and undrain; shared with the cluster's peer task.
    pub clock: Clock,
    /// Where the drains are published on every change, for the peers.
    pub drains_out: watch::Sender<Arc<Drains>>,
    /// Where state changes, drains and answer-mode changes are recorded.
    pub events: EventLog,
    /// Cancelled to stop the task, its probes and its lookups.
    pub shutdown: CancellationToken,
}

/// Resolutions queued for the task.
const RESOLUTION_QUEUE: usize = 256;

impl HealthTask {
    /// Runs the task until shutdown, starting with a probe round over every address.
    pub async fn run(loaded: Loaded, wiring: Wiring) {
        let Wiring {
            snapshot,
            published,
            metrics,
            probes,
            mut reports,
            mut commands,
            ready,
            state,
            drains,
            clock,
            drains_out,
            events,
            shutdown,
        } = wiring;
        let (resolutions_tx, mut resolutions) = mpsc::channel(RESOLUTION_QUEUE);
        let resolved = state.as_ref().map_or_else(Resolved::default, |dir| {
            let path = dir.path().join(crate::state::resolved::FILE_NAME);
            let (resolved, problems) = Resolved::read(&path);
            for problem in problems {
                tracing::warn!(file = %path.display(), %problem, "ignored in the last known addresses");
            }
            resolved
        });
        let kept = Kept::new(state, drains, resolved, clock, drains_out);
        let first_round = Round {
            until: Instant::now() + first_round_bound(&loaded),
            probes: 0,
            resolutions: FxHashSet::default(),
        };
        let mut task = Self {
            hosts: Vec::new(),
            probes: Probes::new(probes, shutdown.child_token()),
            resolvers: Resolvers::new(resolutions_tx, shutdown.child_token()),
            listings: Listings::new(shutdown.child_token()),
            publisher: Publisher::new(
                snapshot,
                published,
                metrics.clone(),
                events.clone(),
                &loaded,
                kept.dir(),
            ),
            kept,
            round: Some(first_round),
            metrics,
            events,
            key_series: FxHashSet::default(),
            ready,
            shutdown: shutdown.clone(),
            loaded: loaded.clone(),
        };
        task.expire_drains();
        task.switch(loaded, true);
        task.check_round();
        loop {
            let round_end = task.round.as_ref().map(|r| r.until);
            let drain_end = task.kept.drains.next_end();
            let resign_at = task.publisher.resign_at();
            tokio::select! {
                Some(report) = reports.recv() => task.report(report),
                Some(resolution) = resolutions.recv() => task.resolved(resolution),
                Some(command) = commands.recv() => task.command(command),
                event = task.listings.next() => task.listing_event(event),
                () = sleep_until(round_end) => task.end_round(),
                () = sleep_until_wall(drain_end) => task.expire_drains(),
                () = sleep_until_wall(resign_at) => task.resign_if_due(resign_at),
                () = shutdown.cancelled() => break,
            }
            // Take whatever else is queued, so that a burst of changes makes one snapshot.
            while let Ok(report) = reports.try_recv() {
                task.report(report);
            }
            task.publish_if_due();
        }
        task.probes.stop_all();
        task.resolvers.stop_all();
        task.listings.stop_all();
    }

    /// Publishes pending changes, unless the start-up round is still out.
    pub(super) fn publish_if_due(&mut self) {
        if self.round.is_none() {
            self.publisher
                .publish_if_dirty(&self.loaded, &self.hosts, &self.listings.demotions);
        }
    }

    pub(super) fn thresholds(&self) -> Thresholds {
        let p = &self.loaded.config.probe;
        Thresholds {
            rise: p.rise,
            fall: p.fall,
        }
    }

    /// The probe interval with ±10 % jitter, so that probes of many hosts spread out.
    pub(super) fn jittered_interval(&self) -> Duration {
        self.loaded
            .config
            .probe
            .interval
            .mul_f64(0.9 + 0.2 * fastrand::f64())
    }

    /// Ends the start-up round once nothing is outstanding.
    pub(super) fn check_round(&mut self) {
        if let Some(round) = &self.round
            && round.probes == 0
            && round.resolutions.is_empty()
        {
            self.end_round();
        }
    }

    fn end_round(&mut self) {
        if let Some(round) = self.round.take() {
            if round.probes > 0 || !round.resolutions.is_empty() {
                tracing::warn!(
                    probes = round.probes,
                    resolutions = round.resolutions.len(),
                    "the first probe round ran out of time; serving what is known (addresses without a verdict are not served)"
                );
            }
            self.publisher.changed();
            self.publish_if_due();
            self.ready.send_replace(true);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Drain {
                site,
                host,
                drain,
                reply,
            } => {
                let _ = reply.send(self.drain(&site, &host, drain));
            }
            Command::Reload { loaded, reply } => {
                let outcome = self.switch(*loaded, false);
                self.publish_if_due();
                let _ = reply.send(outcome);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Drains { reply } => {
                let _ = reply.send(self.drain_list());
            }
            Command::Merge {
                drains,
                from,
                reply,
            } => {
                let _ = reply.send(self.merge_drains(&drains, &from));
            }
        }
    }

    /// Rebuilds when signatures reach their refresh point or a key's timing says so (the wait
    /// wakes at least every minute, in case the clock was set).
    fn resign_if_due(&mut self, at: Option<SystemTime>) {
        if at.is_some_and(|at| at <= SystemTime::now()) {
            self.publisher.changed();
        }
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Whether the first probe round has finished.
    pub(super) fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

/// How long the start-up round may take: the longest probe of any host (a probe that waits
/// for a free slot counts as many probes as wait before it), after the first resolution of
/// DNS-named hosts when there are any, and a margin.
pub fn first_round_bound(loaded: &Loaded) -> Duration {
    let topology = &loaded.topology;
    let longest = topology
        .hosts
        .iter()
        .map(|h| crate::probe::ProbeSettings::step_bound(h.timeout, h.starttls))
        .max()
        .unwrap_or_default();
    let addresses: usize = topology
        .hosts
        .iter()
        .map(|h| h.addresses.len().max(1))
        .sum();
    let waves = addresses
        .div_ceil(loaded.config.probe.max_concurrent.max(1))
        .max(1) as u32;
    let resolving = if topology.hosts.iter().any(|h| h.target.is_some()) {
        crate::probe::resolve::RESOLVE_TIMEOUT
    } else {
        Duration::ZERO
    };
    resolving + longest * waves + ROUND_MARGIN
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until a wall-clock time (a timed drain's end), checking at least every minute in
/// case the clock is set.
async fn sleep_until_wall(at: Option<SystemTime>) {
    match at {
        Some(at) => {
            let wait = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(60));
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending().await,
    }
}
