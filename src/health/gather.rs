//! The status report of everything the health task knows now.

use std::time::Instant;

use super::runtime::view_of;
use super::status::{
    AddressStatus, HostStatus, SiteStatus, StatusReport, millis, rfc3339, site_answers, wall_clock,
};
use super::task::HealthTask;
use crate::answer::{Mode, State};

impl HealthTask {
    /// The status report of everything known now.
    pub(super) fn status(&self) -> StatusReport {
        let snapshot = self.publisher.current();
        let topology = &self.loaded.topology;
        let same = std::sync::Arc::ptr_eq(&snapshot.topology, topology);
        let answers = if same {
            site_answers(&snapshot)
        } else {
            Vec::new()
        };
        let now = Instant::now();
        let view = view_of(&self.hosts);
        let sites = topology
            .sites
            .iter()
            .enumerate()
            .map(|(site_id, site)| {
                let (mode, degraded, answer) =
                    answers
                        .get(site_id)
                        .cloned()
                        .unwrap_or((Mode::Normal, false, Vec::new()));
                let hosts = site
                    .hosts
                    .iter()
                    .map(|&id| {
                        let h = &topology.hosts[id];
                        let rt = &self.hosts[id];
                        let health = &view.hosts[id];
                        let state = if rt.drain.is_some() {
                            "drained"
                        } else if rt
                            .addresses
                            .iter()
                            .all(|a| a.hysteresis.state() == State::Unknown)
                        {
                            "unknown"
                        } else if health.healthy() {
                            "up"
                        } else {
                            "down"
                        };
                        HostStatus {
                            name: h.name.clone(),
                            fqdn: h.fqdn.to_ascii(),
                            state: state.to_string(),
                            drained: rt.drain.is_some(),
                            drained_until: rt.drain.and_then(|d| d.until).map(rfc3339),
                            healthy: health.healthy(),
                            target: h.target.as_ref().map(|t| t.to_ascii()),
                            resolve_error: rt.resolve_error.clone(),
                            addresses: rt
                                .addresses
                                .iter()
                                .map(|a| AddressStatus {
                                    address: a.addr,
                                    port: h.port,
                                    state: a.hysteresis.state().name().to_string(),
                                    pending: a.hysteresis.pending(),
                                    reason: a.reason.clone(),
                                    last_probe: a.last_probe.map(|(t, _)| rfc3339(t)),
                                    latency_ms: a.last_probe.map(|(_, d)| millis(d)),
                                    since: rfc3339(wall_clock(a.hysteresis.since())),
                                    since_seconds: a.hysteresis.age(now).as_secs_f64(),
                                })
                                .collect(),
                            last_24h: None,
                        }
                    })
                    .collect();
                SiteStatus {
                    name: site.name.clone(),
                    domain: site.domain.to_ascii(),
                    mode,
                    degraded,
                    answer,
                    hosts,
                    last_24h: None,
                    reputation: self
                        .site_reputation(site_id, same.then(|| &snapshot.plans[site_id])),
                }
            })
            .collect();
        StatusReport {
            generation: snapshot.generation,
            serial: snapshot.serial,
            ready: self.is_ready(),
            origin: topology.origin.to_ascii(),
            sites,
            drains: self.drain_list(),
        }
    }
}
