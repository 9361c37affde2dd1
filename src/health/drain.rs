//! Drains: a host taken out of the answers (still probed), until an undrain or until the end
//! of its maintenance window. Each change is stamped by the cluster's clock and kept as the
//! host's register in the state directory; a change from a peer is merged the same way (the
//! greater stamp wins). Every start and end of a drain is an event.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{info, warn};

use super::command::{DrainOutcome, MergeOutcome};
use super::status::DrainStatus;
use super::task::HealthTask;
use crate::answer::Mode;
use crate::events::Event;
use crate::state::drains::{Drain, Drains, Entry};
use crate::topology::HostId;

impl HealthTask {
    /// Drains (`Some`) or undrains `site/host`, stamped now, and publishes the answers that
    /// follow. A host no longer configured can be undrained, which clears its stale drain; it
    /// cannot be drained.
    pub(super) fn drain(
        &mut self,
        site: &str,
        host: &str,
        drain: Option<Drain>,
    ) -> Result<DrainOutcome, String> {
        let topology = self.loaded.topology.clone();
        let now = SystemTime::now();
        let key = match topology.find_host(site, host) {
            Some(id) => topology.hosts[id].key(&topology).to_ascii_lowercase(),
            None if drain.is_none()
                && self
                    .kept
                    .drains
                    .active(&format!("{site}/{host}"), now)
                    .is_some() =>
            {
                format!("{site}/{host}").to_ascii_lowercase()
            }
            None => return Err(format!("no host {site}/{host} in the configuration")),
        };
        let entry = Entry {
            drain,
            stamp: self.kept.clock.now(),
        };
        let before = self.kept.drains.active(&key, now);
        // A fresh stamp beats whatever is held: the operator's word is the latest.
        self.kept.drains.merge(&key, entry.clone(), now);
        let drained = self.apply_drain(&key, before, now, "by operator");
        let saved = self.kept.save_drains();
        // The reply means the answers have changed, and its warning reads them.
        self.publish_if_due();
        let warning = drained.and_then(|id| self.left_without_local(id, &key));
        Ok(DrainOutcome {
            warning,
            saved,
            entry: (key, entry),
        })
    }

    /// Merges a peer's registers (`from` names it): the greater stamp wins each host; what
    /// changes is applied, recorded and saved, and the answers change before this returns.
    pub(super) fn merge_drains(&mut self, incoming: &Drains, from: &str) -> MergeOutcome {
        let now = SystemTime::now();
        let mut outcome = MergeOutcome::default();
        let mut drained = Vec::new();
        for (key, entry) in incoming.iter() {
            if let Err(e) = self.kept.clock.observe(&entry.stamp) {
                warn!(peer = %from, host = %key, error = %e, "a drain from a peer was not taken");
                outcome.refused.push(format!("{key}: {e}"));
                continue;
            }
            let before = self.kept.drains.entry(key).cloned();
            if !self.kept.drains.merge(key, entry.clone(), now) {
                continue;
            }
            outcome.changed += 1;
            let was = before.as_ref().and_then(|b| b.active(now));
            let ended_window = entry.drain.is_none()
                && before.is_some_and(|b| b.stamp == entry.stamp && b.drain.is_some());
            let reason = if ended_window {
                "maintenance window over".to_string()
            } else if entry.stamp.origin.is_empty() {
                format!("by operator on {from}")
            } else {
                format!("by operator on {}", entry.stamp.origin)
            };
            if let Some(id) = self.apply_drain(key, was, now, &reason) {
                drained.push((id, key.to_string()));
            }
        }
        let purged = self.kept.drains.purge(now);
        if outcome.changed > 0 || purged > 0 {
            self.save_drains_logged();
        }
        self.publish_if_due();
        // One warning a site, however many of its hosts the peer drained.
        let topology = self.loaded.topology.clone();
        drained.sort_by_key(|(id, _)| topology.hosts[*id].site);
        drained.dedup_by_key(|(id, _)| topology.hosts[*id].site);
        for (id, key) in &drained {
            self.left_without_local(*id, key);
        }
        outcome
    }

    /// Brings the host of `key` in line with its register at `now`: its drain, and an event
    /// when that changed (`reason` says by whom). `before` is the register's drain before the
    /// change, for a host no longer configured. The host, when this drained it: once the
    /// answers are published, [`left_without_local`](Self::left_without_local) says what that
    /// did to its site.
    fn apply_drain(
        &mut self,
        key: &str,
        before: Option<Drain>,
        now: SystemTime,
        reason: &str,
    ) -> Option<HostId> {
        let topology = self.loaded.topology.clone();
        let drain = self.kept.drains.active(key, now);
        let (site, host) = key.split_once('/')?;
        let Some(id) = topology.find_host(site, host) else {
            if drain.is_none() && before.is_some() {
                info!(host = %key, "stale drain cleared");
                let reason = format!("{reason} (a host no longer configured)");
                self.events.record(Event::undrain(site, host, &reason));
            }
            return None;
        };
        if self.hosts[id].drain == drain {
            return None;
        }
        let was_drained = self.hosts[id].drain.is_some();
        self.hosts[id].drain = drain;
        if was_drained != drain.is_some() {
            self.publisher.changed();
        }
        let until = drain
            .and_then(|d| d.until)
            .map(|u| humantime::format_rfc3339_seconds(u).to_string());
        info!(host = %key, drained = drain.is_some(), until = until.as_deref().unwrap_or("-"), %reason, "drain changed");
        let h = &topology.hosts[id];
        let (site_name, host_name) = (&topology.sites[h.site].name, &h.name);
        self.events.record(match drain {
            Some(d) => Event::drain(site_name, host_name, was_drained, d.until, reason),
            None => Event::undrain(site_name, host_name, reason),
        });
        drain.map(|_| id)
    }

    /// The warning, logged, when the published answers leave the site of host `id` (drained,
    /// `key`) without a healthy local host. What they say is what senders get, with every
    /// demotion and check the build applies; while they do not know of the drain yet (the first
    /// probe round is still out: the first publish announces each site's mode) there is
    /// nothing to warn of.
    fn left_without_local(&self, id: HostId, key: &str) -> Option<String> {
        let snapshot = self.publisher.current();
        let topology = &snapshot.topology;
        if !Arc::ptr_eq(topology, &self.loaded.topology) || !snapshot.health.host(id).drained {
            return None;
        }
        let site = topology.hosts[id].site;
        let plan = &snapshot.plans[site];
        if plan.mode == Mode::Normal {
            return None;
        }
        let text = format!(
            "site {} has no healthy local host left: its answer now {}",
            topology.sites[site].name,
            if plan.mode == Mode::Failsafe {
                "lists every configured host (failsafe), drained ones included, so that senders queue and retry"
            } else {
                "names only the fallback sites' hosts"
            }
        );
        warn!(host = %key, "{text}");
        Some(text)
    }

    /// Ends the maintenance windows whose time has come: the same on every instance, since
    /// each ends at the time the drain carries.
    pub(super) fn expire_drains(&mut self) {
        let now = SystemTime::now();
        let ended = self.kept.drains.expire(now);
        if ended.is_empty() {
            return;
        }
        for key in &ended {
            info!(host = %key, "maintenance window over: the host is served again once healthy");
            let Some((site, host)) = key.split_once('/') else {
                continue;
            };
            let topology = self.loaded.topology.clone();
            let id = topology.find_host(site, host);
            let (site, host) = id.map_or((site, host), |id| {
                let h = &topology.hosts[id];
                (topology.sites[h.site].name.as_str(), h.name.as_str())
            });
            self.events
                .record(Event::undrain(site, host, "maintenance window over"));
            if let Some(id) = id
                && let Some(runtime) = self.hosts.get_mut(id)
            {
                runtime.drain = None;
                self.publisher.changed();
            }
        }
        self.kept.drains.purge(now);
        self.save_drains_logged();
        self.publish_if_due();
    }

    /// Saves the drains, logging a failure (no operator waits for this write).
    fn save_drains_logged(&mut self) {
        if let Some(write) = self.kept.save_drains() {
            tokio::spawn(async move {
                if let Ok(Err(error)) = write.await {
                    warn!(%error, "cannot save the drained hosts");
                }
            });
        }
    }

    /// Every drain in force, and whether its host is configured.
    pub(super) fn drain_list(&self) -> Vec<DrainStatus> {
        let topology = &self.loaded.topology;
        self.kept
            .drains
            .active_drains(SystemTime::now())
            .map(|(key, drain)| DrainStatus {
                key: key.to_string(),
                configured: key
                    .split_once('/')
                    .and_then(|(site, host)| topology.find_host(site, host))
                    .is_some(),
                until: drain
                    .until
                    .map(|u| humantime::format_rfc3339_seconds(u).to_string()),
            })
            .collect()
    }
}
