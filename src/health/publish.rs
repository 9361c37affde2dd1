//! Publishing: the health view the answers are built from, and each new snapshot swapped in
//! with the metrics, logs and events that go with it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tracing::{error, info, warn};

use super::runtime::{HostRuntime, view_of};
use crate::answer::{self, Demotions, Mode, Snapshot};
use crate::dnssec::{SignatureCache, unix_seconds};
use crate::events::{Event, EventLog};
use crate::loaded::Loaded;
use crate::metrics::{HostLabels, Metrics, SiteLabels};
use crate::state::serial::{self, Serials};
use crate::state::writer::FileWriter;

/// Builds and swaps in snapshots.
pub(super) struct Publisher {
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// Woken after each publish.
    published: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    events: EventLog,
    generation: u64,
    serials: Serials,
    /// Signatures kept from generation to generation: a rebuild signs only what changed.
    signatures: SignatureCache,
    /// Whether the last signed build had no active key (said once, not every generation).
    keyless: bool,
    /// After a build that failed, the next attempt for signatures waits until then.
    retry_after: Option<u64>,
    /// The key files last announced in the log.
    keys_seen: Option<u64>,
    /// Something the answers depend on changed since the last publish ([`Self::changed`]).
    dirty: bool,
    /// Nothing published yet: every site not in normal mode is announced.
    first: bool,
}

impl Publisher {
    pub(super) fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        published: Arc<tokio::sync::Notify>,
        metrics: Arc<Metrics>,
        events: EventLog,
        loaded: &Loaded,
        state_dir: Option<&Path>,
    ) -> Self {
        // The serial only grows, also across restarts: on above the reservation kept in the
        // state folder, the zone file's serial and the clock.
        let path = state_dir.map(|d| d.join(serial::FILE_NAME));
        let stored = path.as_deref().and_then(|p| match serial::read(p) {
            Ok(s) => s,
            Err(problem) => {
                warn!(file = %p.display(), %problem, "the SOA serial reservation is unreadable; numbering goes on from the clock");
                None
            }
        });
        let clock = unix_seconds(SystemTime::now()) as u32;
        let serials = Serials::start(
            path.map(FileWriter::new),
            stored,
            loaded.zone.soa_serial(),
            clock,
        );
        Self {
            generation: snapshot.load().generation,
            snapshot,
            published,
            metrics,
            events,
            serials,
            signatures: SignatureCache::default(),
            keyless: false,
            retry_after: None,
            keys_seen: None,
            dirty: true,
            first: true,
        }
    }

    /// When the answers must be built again for their signatures or a key timing event.
    pub(super) fn resign_at(&self) -> Option<SystemTime> {
        let at = self.snapshot.load().resign_at?;
        let at = self.retry_after.map_or(at, |r| r.max(at));
        Some(UNIX_EPOCH + Duration::from_secs(at))
    }

    /// The snapshot being served.
    pub(super) fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Something the answers depend on changed (a verdict, a drain, a listing, a reload, the
    /// keys' timing): the next publish builds a snapshot.
    pub(super) fn changed(&mut self) {
        self.dirty = true;
    }

    /// Publishes if anything changed.
    pub(super) fn publish_if_dirty(
        &mut self,
        loaded: &Loaded,
        hosts: &[HostRuntime],
        demotions: &Demotions,
    ) {
        if self.dirty {
            self.publish(loaded, hosts, demotions);
        }
    }

    /// Builds and swaps in a new snapshot.
    fn publish(&mut self, loaded: &Loaded, hosts: &[HostRuntime], demotions: &Demotions) {
        self.dirty = false;
        let previous = self.snapshot.load_full();
        let health = Arc::new(view_of(hosts));
        let topology = loaded.topology.clone();
        self.serials.raise_floor(loaded.zone.soa_serial());
        let (serial, unsaved) = self.serials.advance();
        if let Some(error) = unsaved {
            error!(%error, serial, "cannot save the SOA serial reservation in state_dir; after a restart the serial may go back");
        }
        let generation = self.generation + 1;
        let now = unix_seconds(SystemTime::now());
        if let Some(keys) = &loaded.keys {
            if self.keys_seen != Some(keys.keys.fingerprint) {
                self.keys_seen = Some(keys.keys.fingerprint);
                info!(
                    key_dir = %keys.dir.display(),
                    keys = keys.keys.keys.len(),
                    published = keys.keys.published(now).count(),
                    signing = keys.keys.signing(now).zone.len(),
                    "answers are signed"
                );
                for warning in &keys.keys.warnings {
                    warn!(%warning, "dnssec key");
                }
            }
            let keyless = keys.keys.signing(now).zone.is_empty();
            if keyless && !self.keyless {
                error!(key_dir = %keys.dir.display(), "no key is active: answers carry no signatures, and validating resolvers will refuse them");
            }
            self.keyless = keyless;
        }
        let signing = loaded.keys.as_deref().map(|keys| answer::Signing {
            keys,
            now,
            cache: &mut self.signatures,
        });
        let mut next = match answer::build(
            topology.clone(),
            &loaded.zone,
            health.clone(),
            demotions,
            serial,
            generation,
            signing,
        ) {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot build the answers; serving the previous ones");
                // A rebuild due for its signatures is tried again in a minute, not at once.
                self.retry_after = Some(now + 60);
                return;
            }
        };
        self.retry_after = None;
        let same_topology = Arc::ptr_eq(&previous.topology, &topology);
        if same_topology {
            next.warm = previous.warm.clone();
        }
        self.generation = generation;
        // Each site's mode in the previous generation: by index while the topology stays, by
        // name across a reload (sites may have moved or gone).
        let first = std::mem::take(&mut self.first);
        let renamed: Option<std::collections::HashMap<&str, Mode>> = (!same_topology).then(|| {
            previous
                .topology
                .sites
                .iter()
                .zip(&previous.plans)
                .map(|(s, p)| (s.name.as_str(), p.mode))
                .collect()
        });
        for (site_id, plan) in next.plans.iter().enumerate() {
            let site = &topology.sites[site_id].name;
            let before = match &renamed {
                _ if first => None,
                None => previous.plans.get(site_id).map(|p| p.mode),
                Some(modes) => modes.get(site.as_str()).copied(),
            };
            if before.is_some_and(|b| b != plan.mode)
                || (before.is_none() && plan.mode != Mode::Normal)
            {
                log_mode(site, plan.mode, plan.exchanges.is_empty());
            }
            let from = if first { None } else { before };
            if from != Some(plan.mode) {
                let reason = match (from, plan.mode) {
                    (None, Mode::Normal) => "local hosts lead the answer",
                    (_, mode) => mode_text(mode, plan.exchanges.is_empty()),
                };
                self.events.record(Event::mode(
                    site,
                    from.map_or("unknown", mode_name),
                    mode_name(plan.mode),
                    reason,
                ));
            }
            self.metrics
                .site_mode
                .get_or_create(&SiteLabels { site: site.clone() })
                .set(mode_number(plan.mode));
        }
        for (id, host) in topology.hosts.iter().enumerate() {
            let labels = HostLabels {
                site: topology.sites[host.site].name.clone(),
                host: host.name.clone(),
            };
            self.metrics
                .host_up
                .get_or_create(&labels)
                .set(i64::from(health.host(id).healthy()));
            self.metrics
                .host_drained
                .get_or_create(&labels)
                .set(i64::from(health.host(id).drained));
        }
        self.metrics.generation.set(generation as i64);
        let signatures_made = next.signatures_made;
        self.snapshot.store(Arc::new(next));
        self.published.notify_one();
        tracing::debug!(generation, serial, signatures_made, "published answers");
    }
}

/// The number `smarthostd_site_answer_mode` exports.
fn mode_number(mode: Mode) -> i64 {
    match mode {
        Mode::Normal => 0,
        Mode::RemoteOnly => 1,
        Mode::Failsafe => 2,
    }
}

/// The name events give a mode.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Normal => "local",
        Mode::RemoteOnly => "remote-only",
        Mode::Failsafe => "failsafe",
    }
}

/// What a mode means for senders (`empty`: no host in the answer has a known address).
fn mode_text(mode: Mode, empty: bool) -> &'static str {
    match mode {
        Mode::Normal => "local hosts are back: they lead the answer again",
        Mode::RemoteOnly => {
            "no local host is healthy: answering with the fallback sites' hosts only"
        }
        Mode::Failsafe if empty => {
            "no host in this site's answer has a known address (DNS-named hosts that never resolved, none remembered in state_dir): its name answers SERVFAIL so that resolvers retry and senders defer"
        }
        Mode::Failsafe => {
            "no host in this site's answer is healthy: answering with every configured host (failsafe), so that senders queue and retry instead of bouncing"
        }
    }
}

fn log_mode(site: &str, mode: Mode, empty: bool) {
    let text = mode_text(mode, empty);
    match mode {
        Mode::Normal => info!(site = %site, "{text}"),
        Mode::RemoteOnly => warn!(site = %site, "{text}"),
        Mode::Failsafe if empty => error!(site = %site, "{text}"),
        Mode::Failsafe => warn!(site = %site, "{text}"),
    }
}
