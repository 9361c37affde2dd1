//! The health task: sole owner of every address's verdict, and sole publisher of snapshots.
//!
//! Probe reports and operator commands arrive on channels; after each batch, if anything the
//! answers depend on changed, a new snapshot is built and swapped in. While a probe round is
//! outstanding (start-up, or new hosts after a reload) publishing waits, so that hosts are
//! probed before they are served — bounded by the probe timeout.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::State;
use super::drains::DrainStore;
use super::hysteresis::{Hysteresis, Thresholds};
use super::status::StatusReport;
use crate::admin::metrics::{AddressMetrics, Metrics, TransitionLabels};
use crate::answer::Snapshot;
use crate::loaded::Loaded;
use crate::probe::{self, ProbeContext, ProbeReport};

/// Extra time granted to a probe round beyond the probe timeout before serving anyway.
pub const ROUND_MARGIN: Duration = Duration::from_millis(500);

/// Requests to the health task.
pub enum Command {
    /// Drain (`true`) or undrain a host; the reply carries a warning when the drain leaves a
    /// site with no healthy host.
    Drain {
        site: String,
        host: String,
        drained: bool,
        reply: oneshot::Sender<Result<Option<String>, String>>,
    },
    /// Switch to a new, already checked configuration.
    Reload {
        loaded: Box<Loaded>,
        reply: oneshot::Sender<()>,
    },
    /// The addresses a DNS-named host resolves to now.
    Addresses {
        epoch: u64,
        host: usize,
        addresses: Vec<IpAddr>,
    },
    Status {
        reply: oneshot::Sender<StatusReport>,
    },
}

/// One address being probed.
pub(super) struct AddressRuntime {
    pub(super) addr: IpAddr,
    pub(super) hysteresis: Hysteresis,
    /// Why the last failed probe failed.
    pub(super) reason: Option<String>,
    pub(super) last_probe: Option<(SystemTime, Duration)>,
    pub(super) cancel: CancellationToken,
    /// Brings this address's next probe forward.
    pub(super) wake: Arc<tokio::sync::Notify>,
    pub(super) metrics: AddressMetrics,
}

/// One host's addresses and drain flag.
pub(super) struct HostRuntime {
    pub(super) addresses: Vec<AddressRuntime>,
    pub(super) drained: bool,
}

/// A probe round that publishing waits for.
pub(super) struct Round {
    pub(super) until: Instant,
    pub(super) waiting: usize,
}

/// The health task's state.
pub struct HealthTask {
    pub(super) loaded: Loaded,
    pub(super) hosts: Vec<HostRuntime>,
    pub(super) epoch: u64,
    pub(super) generation: u64,
    pub(super) serial: u32,
    pub(super) dirty: bool,
    pub(super) round: Option<Round>,
    pub(super) snapshot: Arc<ArcSwap<Snapshot>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) probes: ProbeContext,
    pub(super) probes_cancel: CancellationToken,
    pub(super) drains: DrainStore,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) ehlo: String,
    pub(super) resolvers: CancellationToken,
    pub(super) commands_tx: mpsc::WeakSender<Command>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
}

/// What the task needs from the server.
pub struct Wiring {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub probes: ProbeContext,
    pub reports: mpsc::Receiver<ProbeReport>,
    pub commands: mpsc::Receiver<Command>,
    pub commands_tx: mpsc::WeakSender<Command>,
    pub ready: watch::Sender<bool>,
    pub drains: DrainStore,
    pub shutdown: CancellationToken,
}

impl HealthTask {
    /// Runs the task until shutdown, starting with a probe round over every address.
    pub async fn run(loaded: Loaded, wiring: Wiring) {
        let serial = loaded.zone.soa_serial().max(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32),
        );
        let Wiring {
            snapshot,
            metrics,
            probes,
            mut reports,
            mut commands,
            commands_tx,
            ready,
            drains,
            shutdown,
        } = wiring;
        let mut task = Self {
            hosts: Vec::new(),
            epoch: 0,
            generation: snapshot.load().generation,
            serial,
            dirty: true,
            round: None,
            snapshot,
            metrics,
            probes_cancel: shutdown.child_token(),
            resolvers: shutdown.child_token(),
            probes,
            drains,
            tls: None,
            ehlo: String::new(),
            commands_tx,
            ready,
            shutdown: shutdown.clone(),
            loaded: loaded.clone(),
        };
        task.switch(loaded);
        if task.round.is_none() {
            task.publish();
            task.ready.send_replace(true);
        }
        loop {
            let round_end = task.round.as_ref().map(|r| r.until);
            tokio::select! {
                Some(report) = reports.recv() => task.report(report),
                Some(command) = commands.recv() => task.command(command),
                () = sleep_until(round_end) => task.end_round(),
                () = shutdown.cancelled() => break,
            }
            // Take whatever else is queued, so that a burst of changes makes one snapshot.
            while let Ok(report) = reports.try_recv() {
                task.report(report);
            }
            if task.dirty && task.round.is_none() {
                task.publish();
            }
        }
        task.probes_cancel.cancel();
        task.resolvers.cancel();
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

    fn report(&mut self, r: ProbeReport) {
        if r.epoch != self.epoch {
            return;
        }
        let thresholds = self.thresholds();
        let topology = self.loaded.topology.clone();
        let Some(host) = self.hosts.get_mut(r.host) else {
            return;
        };
        let Some(address) = host.addresses.iter_mut().find(|a| a.addr == r.addr) else {
            return;
        };
        let first = address.last_probe.is_none();
        let was_pending = address.hysteresis.pending();
        let was_steady_up = !was_pending && address.hysteresis.state() == State::Up;
        address.last_probe = Some((SystemTime::now(), r.elapsed));
        let ok = r.result.is_ok();
        match &r.result {
            Ok(_) => {
                if address.hysteresis.state() != State::Down {
                    address.reason = None;
                }
            }
            Err(reason) => address.reason = Some(reason.clone()),
        }
        let h = &topology.hosts[r.host];
        let site = &topology.sites[h.site].name;
        if let Some(t) = address.hysteresis.observe(ok, thresholds, r.at) {
            let reason = match &r.result {
                Ok(latency) => format!(
                    "SMTP dialogue completed in {}",
                    humantime::format_duration(round_ms(*latency))
                ),
                Err(reason) => reason.clone(),
            };
            let needed = if ok { thresholds.rise } else { thresholds.fall };
            info!(
                site = %site, host = %h.name, address = %r.addr,
                from = state_name(t.from), to = state_name(t.to),
                %reason, results = t.count, needed,
                "address state changed"
            );
            self.metrics
                .transitions
                .get_or_create(&TransitionLabels {
                    site: site.clone(),
                    host: h.name.clone(),
                    address: r.addr.to_string(),
                    to: state_name(t.to),
                })
                .inc();
            self.dirty = true;
        }
        if address.hysteresis.pending() != was_pending {
            // The answer's TTL follows a pending change.
            self.dirty = true;
        }
        let up = address.hysteresis.state() != State::Down;
        address.metrics.probed(ok, r.elapsed, up);
        let next = if address.hysteresis.pending() {
            // Fast confirm: a first failure, or a first success of a down address, is checked
            // again at once.
            Duration::ZERO
        } else {
            self.jittered_interval()
        };
        let _ = r.next.send(next);
        if !ok && was_steady_up {
            self.check_siblings(topology.hosts[r.host].site, r.addr);
        }
        if first && let Some(round) = &mut self.round {
            round.waiting = round.waiting.saturating_sub(1);
            if round.waiting == 0 {
                self.end_round();
            }
        }
    }

    fn end_round(&mut self) {
        if self.round.take().is_some() {
            self.dirty = true;
            self.publish();
            self.ready.send_replace(true);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Drain {
                site,
                host,
                drained,
                reply,
            } => {
                let result = self.drain(&site, &host, drained);
                // Published before the reply, so that an operator (or a test) who sees the
                // drain confirmed also sees it in the next answer.
                if self.dirty && self.round.is_none() {
                    self.publish();
                }
                let _ = reply.send(result);
            }
            Command::Reload { loaded, reply } => {
                self.switch(*loaded);
                let _ = reply.send(());
            }
            Command::Addresses {
                epoch,
                host,
                addresses,
            } => {
                if epoch == self.epoch {
                    self.set_addresses(host, addresses);
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    /// Spawns a probe task for one address of `host`.
    pub(super) fn spawn_probe(
        &self,
        host: usize,
        addr: IpAddr,
        first_delay: Duration,
        cancel: CancellationToken,
    ) -> Arc<tokio::sync::Notify> {
        let topology = &self.loaded.topology;
        let h = &topology.hosts[host];
        let settings = probe::ProbeSettings {
            timeout: h.timeout,
            ehlo: self.ehlo.clone(),
            tls: if h.starttls { self.tls.clone() } else { None },
            tls_name: h.target.as_ref().and_then(|n| {
                rustls_pki_types::ServerName::try_from(
                    n.to_ascii().trim_end_matches('.').to_string(),
                )
                .ok()
            }),
        };
        let target = probe::Target {
            epoch: self.epoch,
            host,
            addr,
            port: h.port,
            settings: Arc::new(settings),
        };
        probe::spawn(
            &self.probes,
            target,
            first_delay,
            self.loaded.config.probe.interval,
            cancel,
        )
    }

    /// A steady address of `site` failed: probe the site's other steady addresses now rather
    /// than at their turn. A whole site going dark (power, uplink) is then seen within one
    /// probe of any of its relays, while each address still needs `fall` failures of its own.
    fn check_siblings(&self, site: usize, failed: IpAddr) {
        let topology = &self.loaded.topology;
        for &host in &topology.sites[site].hosts {
            for a in &self.hosts[host].addresses {
                let steady = a.hysteresis.state() != State::Down && !a.hysteresis.pending();
                if a.addr != failed && steady {
                    a.wake.notify_one();
                }
            }
        }
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    pub(super) fn shutdown_child(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// Whether the first probe round has finished.
    pub(super) fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// The lower-case name of a state, for logs, metrics and status.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Unknown => "unknown",
        State::Up => "up",
        State::Down => "down",
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
