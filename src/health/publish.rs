//! Publishing: the health view the answers are built from, each new snapshot swapped in with
//! the metrics and logs that go with it, and operator drains.

use std::sync::Arc;

use tracing::{error, info, warn};

use super::task::HealthTask;
use super::{AddressHealth, HealthView, HostHealth};
use crate::admin::metrics::{HostLabels, SiteLabels};
use crate::answer::{self, Mode};

impl HealthTask {
    /// The health view the answers are built from.
    pub(super) fn view(&self) -> HealthView {
        HealthView {
            hosts: self
                .hosts
                .iter()
                .map(|h| HostHealth {
                    drained: h.drained,
                    addresses: h
                        .addresses
                        .iter()
                        .map(|a| AddressHealth {
                            addr: a.addr,
                            state: a.hysteresis.state(),
                            pending: a.hysteresis.pending(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Builds and swaps in a new snapshot.
    pub(super) fn publish(&mut self) {
        let previous = self.snapshot.load_full();
        let health = Arc::new(self.view());
        let topology = self.loaded.topology.clone();
        let serial = self.serial.wrapping_add(1);
        let generation = self.generation + 1;
        let mut next = match answer::build(
            topology.clone(),
            &self.loaded.zone,
            health.clone(),
            serial,
            generation,
        ) {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot build the answers; serving the previous ones");
                self.dirty = false;
                return;
            }
        };
        if Arc::ptr_eq(&previous.topology, &topology) {
            next.warm = previous.warm.clone();
        }
        self.serial = serial;
        self.generation = generation;
        self.dirty = false;
        for (site_id, plan) in next.plans.iter().enumerate() {
            let site = &topology.sites[site_id].name;
            let before =
                Arc::ptr_eq(&previous.topology, &topology).then(|| previous.plans[site_id].mode);
            if before.is_some_and(|b| b != plan.mode)
                || (before.is_none() && plan.mode != Mode::Normal)
            {
                match plan.mode {
                    Mode::Normal => {
                        info!(site = %site, "local hosts are back: they lead the answer again")
                    }
                    Mode::RemoteOnly => {
                        warn!(site = %site, "no local host is healthy: answering with the fallback sites' hosts only")
                    }
                    Mode::Failsafe => warn!(
                        site = %site,
                        "no host in this site's answer is healthy: answering with every configured host (failsafe), so that senders queue and retry instead of bouncing"
                    ),
                }
            }
            let mode = match plan.mode {
                Mode::Normal => 0,
                Mode::RemoteOnly => 1,
                Mode::Failsafe => 2,
            };
            self.metrics
                .site_mode
                .get_or_create(&SiteLabels { site: site.clone() })
                .set(mode);
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
        self.snapshot.store(Arc::new(next));
        tracing::debug!(generation, serial, "published answers");
    }

    pub(super) fn drain(
        &mut self,
        site: &str,
        host: &str,
        drained: bool,
    ) -> Result<Option<String>, String> {
        let topology = self.loaded.topology.clone();
        let id = topology
            .find_host(site, host)
            .ok_or_else(|| format!("no host {site}/{host} in the configuration"))?;
        let key = topology.hosts[id].key(&topology);
        let mut warning = None;
        if self.hosts[id].drained != drained {
            self.hosts[id].drained = drained;
            self.dirty = true;
            info!(host = %key, drained, "drain changed by operator");
            let view = self.view();
            let site_id = topology.hosts[id].site;
            let plan = answer::plan::site_plan(&topology, &view, site_id);
            if drained && plan.mode != Mode::Normal {
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
        }
        if let Err(e) = self.drains.set(&key, drained) {
            let text = format!("the drain applies now but could not be saved for restarts: {e}");
            warn!(host = %key, "{text}");
            warning = Some(warning.map_or(text.clone(), |w| format!("{w}; {text}")));
        }
        Ok(warning)
    }
}
