//! Changes of what is probed: a new configuration, or new addresses for a DNS-named host.
//!
//! A reload touches only what changed. An address that stays, probed the same way, keeps its
//! probe task — its schedule and any probe in flight — and its verdict; one whose probe
//! settings changed keeps its verdict and is probed again at once; a new one is probed at once
//! and not served until it has passed. A reload of an unchanged configuration does nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::Name;
use tracing::{info, warn};

use super::hysteresis::Hysteresis;
use super::probes::Destination;
use super::runtime::{AddressRuntime, HostRuntime};
use super::task::HealthTask;
use crate::loaded::Loaded;
use crate::probe::resolve::{Job, Resolution};
use crate::probe::{Pinned, ProbeSettings};
use crate::topology::{Host, HostId};

/// What a switch did to the probed addresses.
#[derive(Debug, Default)]
struct Counts {
    kept: usize,
    reprobed: usize,
    added: usize,
    removed: usize,
}

impl HealthTask {
    /// Switches to `loaded` (at start, `initial`); returns what changed, in words.
    pub(super) fn switch(&mut self, mut loaded: Loaded, initial: bool) -> String {
        if !initial && loaded.fingerprint == self.loaded.fingerprint {
            return "configuration unchanged: nothing to do".into();
        }
        if !initial && loaded.tls_fingerprint == self.loaded.tls_fingerprint {
            // Same inputs, same TLS settings: the probes that use them can stay.
            loaded.tls = self.loaded.tls.clone();
        }
        let old_topology = self.loaded.topology.clone();
        let mut old: HashMap<String, (Option<Name>, HostRuntime)> = self
            .hosts
            .drain(..)
            .enumerate()
            .map(|(id, h)| {
                let host = &old_topology.hosts[id];
                (host.key(&old_topology), (host.target.clone(), h))
            })
            .collect();
        if !initial && loaded.config.transfer != self.loaded.config.transfer {
            // The DNS edge and the NOTIFY tasks took [transfer] at start.
            warn!("[transfer] changed: the new keys, allow and notify apply at the next restart");
        }
        self.loaded = loaded;
        let topology = self.loaded.topology.clone();
        let now = Instant::now();
        let mut counts = Counts::default();
        for (id, host) in topology.hosts.iter().enumerate() {
            let key = host.key(&topology);
            let previous = old.remove(&key);
            let drain = self.kept.drains.active(&key, std::time::SystemTime::now());
            if !initial && previous.is_none() && drain.is_some() {
                warn!(host = %key, "a host returns to the configuration drained, as it was when it left: undrain it to serve it");
            }
            let (old_target, old_runtime) = match previous {
                Some((target, runtime)) => (Some(target), Some(runtime)),
                None => (None, None),
            };
            let addresses = self.addresses_for(host, &key, old_target, old_runtime.as_ref());
            let mut old_addresses = old_runtime.map(|r| r.addresses).unwrap_or_default();
            let settings = Arc::new(self.probe_settings(host));
            let mut runtime = HostRuntime {
                addresses: Vec::with_capacity(addresses.len()),
                drain,
                resolve_error: None,
            };
            for (addr, scope_id) in addresses {
                let kept = old_addresses
                    .iter()
                    .position(|a| a.addr == addr)
                    .map(|i| old_addresses.swap_remove(i));
                let placed = self.place(id, addr, scope_id, &settings, kept, &mut counts, now);
                runtime.addresses.push(placed);
            }
            for gone in old_addresses {
                self.probes.stop(&gone.probe);
                counts.removed += 1;
            }
            self.hosts.push(runtime);
        }
        for (key, (_, gone)) in old {
            for a in &gone.addresses {
                self.probes.stop(&a.probe);
                counts.removed += 1;
            }
            if gone.drain.is_some() {
                info!(host = %key, "a drained host is no longer configured; its drain is kept (`smarthostd drains` lists it, `undrain` clears it)");
            }
        }
        let jobs = topology
            .hosts
            .iter()
            .filter_map(|h| {
                Some(Job {
                    key: h.key(&topology),
                    target: h.target.clone()?,
                    nameservers: self.loaded.config.probe.resolver.clone(),
                })
            })
            .collect();
        let started = self.resolvers.set(jobs, self.probes.tracker());
        if let Some(round) = &mut self.round {
            round.resolutions.extend(started);
        }
        self.configure_listings();
        let pinned = crate::config::tlsa::warnings(&self.loaded.config);
        for warning in pinned.iter().chain(&topology.tlsa_gap_warnings()) {
            warn!(%warning, "tlsa records");
        }
        self.refresh_key_series();
        self.publisher.changed();
        format!(
            "reloaded: {} addresses kept, {} probed again (probe settings changed), {} new (served once a probe passes), {} removed",
            counts.kept, counts.reprobed, counts.added, counts.removed
        )
    }

    /// The addresses to probe for `host`: its configured ones, or for a DNS-named host those
    /// it had (same name) or last resolved to (remembered in the state directory).
    fn addresses_for(
        &self,
        host: &Host,
        key: &str,
        old_target: Option<Option<Name>>,
        old: Option<&HostRuntime>,
    ) -> Vec<(IpAddr, u32)> {
        let Some(target) = &host.target else {
            return host
                .addresses
                .iter()
                .map(|&a| (a, host.scope_id(a)))
                .collect();
        };
        if old_target.as_ref() == Some(&host.target)
            && let Some(old) = old
        {
            return old.addresses.iter().map(|a| (a.addr, 0)).collect();
        }
        let remembered = self.kept.resolved.get(key, &target.to_ascii());
        if let Some(addresses) = remembered {
            info!(host = %key, %target, ?addresses, "probing the addresses this name last resolved to until it resolves again");
        }
        remembered
            .map(|a| a.iter().map(|&a| (a, 0)).collect())
            .unwrap_or_default()
    }

    /// An address's runtime in the new configuration: kept as it is, probed again with new
    /// settings (verdict kept), or new.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        host: HostId,
        addr: IpAddr,
        scope_id: u32,
        settings: &Arc<ProbeSettings>,
        kept: Option<AddressRuntime>,
        counts: &mut Counts,
        now: Instant,
    ) -> AddressRuntime {
        let topology = self.loaded.topology.clone();
        let h = &topology.hosts[host];
        let interval = self.loaded.config.probe.interval;
        let to = Destination {
            addr,
            port: h.port,
            scope_id,
            settings: settings.clone(),
        };
        match kept {
            Some(a) if a.probe.probes_like(h.port, scope_id, settings) => {
                self.probes.reassign(&a.probe, host);
                counts.kept += 1;
                a
            }
            Some(a) => {
                self.probes.stop(&a.probe);
                counts.reprobed += 1;
                let probe = self.probes.start(host, to, Duration::ZERO, interval);
                AddressRuntime { probe, ..a }
            }
            None => {
                counts.added += 1;
                if let Some(round) = &mut self.round {
                    round.probes += 1;
                }
                let probe = self.probes.start(host, to, Duration::ZERO, interval);
                let metrics = self
                    .metrics
                    .address(&topology.sites[h.site].name, &h.name, addr);
                metrics.set_up(false);
                AddressRuntime {
                    addr,
                    probe,
                    hysteresis: Hysteresis::new(now),
                    reason: None,
                    last_probe: None,
                    metrics,
                    key: None,
                }
            }
        }
    }

    /// How `host` is probed.
    fn probe_settings(&self, host: &Host) -> ProbeSettings {
        ProbeSettings {
            timeout: host.timeout,
            ehlo: self.loaded.ehlo.clone(),
            tls: if host.starttls {
                self.loaded.tls.clone()
            } else {
                None
            },
            tls_name: host.tls_name(),
            source: self.loaded.config.probe.source_address,
            tlsa: (!host.tlsa.is_empty()).then(|| {
                Arc::new(Pinned {
                    records: host.tlsa.clone(),
                    name: host.fqdn.to_ascii().trim_end_matches('.').to_string(),
                })
            }),
        }
    }

    /// A resolution of a DNS-named host.
    pub(super) fn resolved(&mut self, r: Resolution) {
        if self.is_shutting_down() {
            return;
        }
        let topology = self.loaded.topology.clone();
        let Some(id) = r
            .key
            .split_once('/')
            .and_then(|(site, host)| topology.find_host(site, host))
            .filter(|&id| topology.hosts[id].target.as_ref() == Some(&r.target))
        else {
            return;
        };
        let first = self
            .round
            .as_mut()
            .is_some_and(|round| round.resolutions.remove(&r.key));
        match r.result {
            Ok(mut addresses) => {
                addresses.sort_by_key(|a| (a.is_ipv6(), *a));
                addresses.dedup();
                self.hosts[id].resolve_error = None;
                if self
                    .kept
                    .resolved
                    .set(&r.key, &r.target.to_ascii(), &addresses)
                {
                    self.kept.save_resolved();
                }
                self.set_addresses(id, addresses);
            }
            Err(reason) => {
                self.hosts[id].resolve_error = Some(reason.clone());
                let known = !self.hosts[id].addresses.is_empty();
                warn!(
                    host = %r.key, target = %r.target, %reason,
                    "resolution failed; {}",
                    if known {
                        "keeping the last known addresses"
                    } else {
                        "no address is known, so the host cannot be served"
                    }
                );
            }
        }
        if first {
            self.check_round();
        }
    }

    /// Applies a new resolution of a DNS-named host: addresses that stay keep their probes.
    fn set_addresses(&mut self, host: HostId, addresses: Vec<IpAddr>) {
        let current: Vec<IpAddr> = self.hosts[host].addresses.iter().map(|a| a.addr).collect();
        if current == addresses {
            return;
        }
        let topology = self.loaded.topology.clone();
        info!(host = %topology.hosts[host].key(&topology), ?addresses, "smart host's addresses changed");
        let now = Instant::now();
        let settings = Arc::new(self.probe_settings(&topology.hosts[host]));
        let mut old = std::mem::take(&mut self.hosts[host].addresses);
        let mut counts = Counts::default();
        for addr in addresses {
            let kept = old
                .iter()
                .position(|a| a.addr == addr)
                .map(|i| old.swap_remove(i));
            let placed = self.place(host, addr, 0, &settings, kept, &mut counts, now);
            self.hosts[host].addresses.push(placed);
        }
        for gone in old {
            self.probes.stop(&gone.probe);
        }
        self.refresh_key_series();
        self.publisher.changed();
    }
}
