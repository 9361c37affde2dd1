//! Operator drains: a host taken out of the answers (still probed), until an undrain or until
//! the end of its maintenance window; every drain kept in the state directory, and every start
//! and end of one recorded as an event.

use std::time::SystemTime;

use tracing::{info, warn};

use super::runtime::view_of;
use super::status::DrainStatus;
use super::task::{DrainOutcome, HealthTask};
use crate::answer::{self, Mode};
use crate::events::Event;
use crate::state::drains::Drain;

impl HealthTask {
    /// Drains (`Some`) or undrains `site/host`. A host no longer configured can be undrained,
    /// which clears its stale drain; it cannot be drained.
    pub(super) fn drain(
        &mut self,
        site: &str,
        host: &str,
        drain: Option<Drain>,
    ) -> Result<DrainOutcome, String> {
        let topology = self.loaded.topology.clone();
        let id = topology.find_host(site, host);
        let key = match id {
            Some(id) => topology.hosts[id].key(&topology),
            None if drain.is_none()
                && self.kept.drains.get(&format!("{site}/{host}")).is_some() =>
            {
                format!("{site}/{host}").to_ascii_lowercase()
            }
            None => return Err(format!("no host {site}/{host} in the configuration")),
        };
        let changed = self.kept.drains.set(&key, drain);
        let mut warning = None;
        if let Some(id) = id
            && self.hosts[id].drain != drain
        {
            let was_drained = self.hosts[id].drain.is_some();
            self.hosts[id].drain = drain;
            if was_drained != drain.is_some() {
                self.publisher.dirty = true;
            }
            let until = drain
                .and_then(|d| d.until)
                .map(|u| humantime::format_rfc3339_seconds(u).to_string());
            info!(host = %key, drained = drain.is_some(), until = until.as_deref().unwrap_or("-"), "drain changed by operator");
            let h = &topology.hosts[id];
            let (site_name, host_name) = (&topology.sites[h.site].name, &h.name);
            self.events.record(match drain {
                Some(d) => Event::drain(site_name, host_name, was_drained, d.until, "by operator"),
                None => Event::undrain(site_name, host_name, "by operator"),
            });
            let site_id = topology.hosts[id].site;
            let plan = answer::plan::site_plan(&topology, &view_of(&self.hosts), site_id);
            if drain.is_some() && plan.mode != Mode::Normal {
                let text = format!(
                    "site {} has no healthy local host left: its answer now {}",
                    topology.sites[site_id].name,
                    if plan.mode == Mode::Failsafe {
                        "lists every configured host (failsafe), drained ones included, so that senders queue and retry"
                    } else {
                        "names only the fallback sites' hosts"
                    }
                );
                warn!(host = %key, "{text}");
                warning = Some(text);
            }
        } else if id.is_none() {
            info!(host = %key, "stale drain cleared by operator");
            self.events.record(Event::undrain(
                site,
                host,
                "by operator (a host no longer configured)",
            ));
        }
        let saved = if changed {
            self.kept.save_drains()
        } else {
            None
        };
        Ok(DrainOutcome { warning, saved })
    }

    /// Ends the drains whose time has come.
    pub(super) fn expire_drains(&mut self) {
        let ended = self.kept.drains.expire(SystemTime::now());
        if ended.is_empty() {
            return;
        }
        let topology = self.loaded.topology.clone();
        for key in &ended {
            info!(host = %key, "maintenance window over: the host is served again once healthy");
            let Some((site, host)) = key.split_once('/') else {
                continue;
            };
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
                self.publisher.dirty = true;
            }
        }
        if let Some(write) = self.kept.save_drains() {
            tokio::spawn(async move {
                if let Ok(Err(error)) = write.await {
                    warn!(%error, "cannot save the drains after a maintenance window ended");
                }
            });
        }
        self.publish_if_due();
    }

    /// Every drain in the state file, and whether its host is configured.
    pub(super) fn drain_list(&self) -> Vec<DrainStatus> {
        let topology = &self.loaded.topology;
        self.kept
            .drains
            .iter()
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
