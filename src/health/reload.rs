//! The health task's changes of what is probed: a new configuration, or new addresses for a
//! DNS-named host. Known addresses keep their verdicts; new ones are probed before they are
//! served; drains come from the state file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::info;

use super::State;
use super::hysteresis::Hysteresis;
use super::status::{
    AddressStatus, HostStatus, SiteStatus, StatusReport, millis, rfc3339, site_answers, wall_clock,
};
use super::task::{AddressRuntime, HealthTask, HostRuntime, ROUND_MARGIN, Round, state_name};
use crate::loaded::Loaded;
use crate::probe::resolve;

/// What is kept of an address across a reload.
struct Carried {
    hysteresis: Hysteresis,
    reason: Option<String>,
    last_probe: Option<(SystemTime, Duration)>,
}

impl HealthTask {
    /// Switches to `loaded`: restarts the probes, keeps what is known of addresses that stay.
    pub(super) fn switch(&mut self, loaded: Loaded) {
        let mut carried: HashMap<(String, IpAddr), Carried> = HashMap::new();
        let mut targets: HashMap<String, Vec<IpAddr>> = HashMap::new();
        let old_topology = self.loaded.topology.clone();
        for (id, host) in self.hosts.drain(..).enumerate() {
            let key = old_topology.hosts[id].key(&old_topology);
            if old_topology.hosts[id].target.is_some() {
                targets.insert(key.clone(), host.addresses.iter().map(|a| a.addr).collect());
            }
            for a in host.addresses {
                carried.insert(
                    (key.clone(), a.addr),
                    Carried {
                        hysteresis: a.hysteresis,
                        reason: a.reason,
                        last_probe: a.last_probe,
                    },
                );
            }
        }
        self.probes_cancel.cancel();
        self.probes_cancel = self.shutdown_child();
        self.resolvers.cancel();
        self.resolvers = self.shutdown_child();
        self.epoch += 1;
        self.loaded = loaded;
        self.tls = self.loaded.tls.clone();
        self.ehlo = self.loaded.ehlo.clone();

        let topology = self.loaded.topology.clone();
        let now = Instant::now();
        let mut fresh = 0;
        for (id, host) in topology.hosts.iter().enumerate() {
            let key = host.key(&topology);
            let addresses = match &host.target {
                None => host.addresses.clone(),
                Some(_) => targets.remove(&key).unwrap_or_default(),
            };
            let mut runtime = HostRuntime {
                addresses: Vec::with_capacity(addresses.len()),
                drained: self.drains.contains(&key),
            };
            for addr in addresses {
                let carried = carried.remove(&(key.clone(), addr));
                fresh += usize::from(carried.is_none());
                let runtime_addr = self.start_address(id, addr, carried, now);
                runtime.addresses.push(runtime_addr);
            }
            self.hosts.push(runtime);
            if let (Some(target), Some(commands)) = (&host.target, self.commands_tx.upgrade()) {
                resolve::spawn(
                    &self.probes.tracker,
                    resolve::Job {
                        epoch: self.epoch,
                        host: id,
                        key,
                        target: target.clone(),
                        nameservers: self.loaded.config.probe.resolver.clone(),
                    },
                    commands,
                    self.resolvers.clone(),
                );
            }
        }
        for key in self.drains.keys() {
            let known = topology.hosts.iter().any(|h| h.key(&topology) == key);
            if !known {
                info!(host = %key, "a drained host is no longer configured; its drain is kept for if it returns");
            }
        }
        self.start_round(fresh, now);
        self.dirty = true;
    }

    /// Waits for `fresh` new addresses' first probes before publishing, at most one probe
    /// timeout (plus a margin) from `now`.
    fn start_round(&mut self, fresh: usize, now: Instant) {
        if fresh == 0 {
            return;
        }
        let longest = self
            .loaded
            .topology
            .hosts
            .iter()
            .map(|h| h.timeout)
            .max()
            .unwrap_or_default();
        let until = now + longest + ROUND_MARGIN;
        match &mut self.round {
            Some(round) => {
                round.waiting += fresh;
                round.until = round.until.max(until);
            }
            None => {
                self.round = Some(Round {
                    until,
                    waiting: fresh,
                })
            }
        }
    }

    /// Applies a new resolution of a DNS-named host.
    pub(super) fn set_addresses(&mut self, host: usize, mut addresses: Vec<IpAddr>) {
        if self.is_shutting_down() || host >= self.hosts.len() {
            return;
        }
        addresses.sort_by_key(|a| (a.is_ipv6(), *a));
        addresses.dedup();
        let current: Vec<IpAddr> = self.hosts[host].addresses.iter().map(|a| a.addr).collect();
        if current == addresses {
            return;
        }
        let topology = self.loaded.topology.clone();
        info!(host = %topology.hosts[host].key(&topology), ?addresses, "smart host's addresses changed");
        let now = Instant::now();
        let mut old: Vec<AddressRuntime> = std::mem::take(&mut self.hosts[host].addresses);
        let mut fresh = 0;
        for addr in addresses {
            if let Some(i) = old.iter().position(|a| a.addr == addr) {
                let kept = old.swap_remove(i);
                self.hosts[host].addresses.push(kept);
                continue;
            }
            fresh += 1;
            let started = self.start_address(host, addr, None, now);
            self.hosts[host].addresses.push(started);
        }
        for gone in old {
            gone.cancel.cancel();
        }
        self.start_round(fresh, now);
        self.dirty = true;
    }

    /// Starts probing one address of `host`: a carried address keeps its verdict and is probed
    /// at its turn, a new one is probed at once.
    fn start_address(
        &self,
        host: usize,
        addr: IpAddr,
        carried: Option<Carried>,
        now: Instant,
    ) -> AddressRuntime {
        let cancel = self.probes_cancel.child_token();
        let first_delay = match carried {
            Some(_) => self.jittered_interval(),
            None => Duration::ZERO,
        };
        let wake = self.spawn_probe(host, addr, first_delay, cancel.clone());
        let carried = carried.unwrap_or_else(|| Carried {
            hysteresis: Hysteresis::new(now),
            reason: None,
            last_probe: None,
        });
        let topology = &self.loaded.topology;
        let h = &topology.hosts[host];
        let metrics = self
            .metrics
            .address(&topology.sites[h.site].name, &h.name, addr);
        metrics.set_up(carried.hysteresis.state() != State::Down);
        AddressRuntime {
            addr,
            hysteresis: carried.hysteresis,
            reason: carried.reason,
            last_probe: carried.last_probe,
            cancel,
            wake,
            metrics,
        }
    }

    /// The status report of everything known now.
    pub(super) fn status(&self) -> StatusReport {
        let snapshot = self.snapshot.load_full();
        let topology = &self.loaded.topology;
        let same = std::sync::Arc::ptr_eq(&snapshot.topology, topology);
        let answers = if same {
            site_answers(&snapshot)
        } else {
            Vec::new()
        };
        let now = Instant::now();
        let view = self.view();
        let sites = topology
            .sites
            .iter()
            .enumerate()
            .map(|(site_id, site)| {
                let (mode, degraded, answer) = answers.get(site_id).cloned().unwrap_or((
                    crate::answer::Mode::Normal,
                    false,
                    Vec::new(),
                ));
                let hosts = site
                    .hosts
                    .iter()
                    .map(|&id| {
                        let h = &topology.hosts[id];
                        let rt = &self.hosts[id];
                        let health = &view.hosts[id];
                        let state = if rt.drained {
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
                            drained: rt.drained,
                            healthy: health.healthy(),
                            target: h.target.as_ref().map(|t| t.to_ascii()),
                            addresses: rt
                                .addresses
                                .iter()
                                .map(|a| AddressStatus {
                                    address: a.addr,
                                    port: h.port,
                                    state: state_name(a.hysteresis.state()).to_string(),
                                    pending: a.hysteresis.pending(),
                                    reason: a.reason.clone(),
                                    last_probe: a.last_probe.map(|(t, _)| rfc3339(t)),
                                    latency_ms: a.last_probe.map(|(_, d)| millis(d)),
                                    since: rfc3339(wall_clock(a.hysteresis.since())),
                                    since_seconds: a.hysteresis.age(now).as_secs_f64(),
                                })
                                .collect(),
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
                }
            })
            .collect();
        StatusReport {
            generation: snapshot.generation,
            serial: snapshot.serial,
            ready: self.is_ready(),
            origin: topology.origin.to_ascii(),
            sites,
        }
    }
}
