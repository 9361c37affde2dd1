//! Whether each pinned relay's address shows a key its TLSA records pin: the last verdict of
//! the probes, a WARN line and an event when it changes, and `smarthostd_tlsa_mismatch`.
//!
//! Only probes that reached the certificate give a verdict: a relay that refuses connections
//! keeps the verdict it had, so that an impostor who comes and goes stays on the alert.

use tracing::{info, warn};

use super::task::HealthTask;
use crate::events::Event;
use crate::metrics::AddressLabels;
use crate::probe::{DaneFailure, Failed, Passed};
use crate::topology::HostId;

fn name(verdict: Option<bool>) -> &'static str {
    match verdict {
        None => "unknown",
        Some(true) => "matched",
        Some(false) => "mismatched",
    }
}

impl HealthTask {
    /// Takes the probe result of address `index` of host `host`.
    pub(super) fn key_checked(
        &mut self,
        host: HostId,
        index: usize,
        result: &Result<Passed, Failed>,
    ) {
        let topology = self.loaded.topology.clone();
        let h = &topology.hosts[host];
        if h.tlsa.is_empty() {
            return;
        }
        let verdict = match result {
            Ok(_) => true,
            Err(failed) if failed.dane.is_some_and(DaneFailure::is_wrong_key) => false,
            Err(_) => return,
        };
        let address = &mut self.hosts[host].addresses[index];
        let before = address.key.replace(verdict);
        if before == Some(verdict) || (before.is_none() && verdict) {
            return;
        }
        let addr = address.addr;
        let site = &topology.sites[h.site].name;
        let reason = match result {
            Ok(_) => "the certificate it presents matches its TLSA records".to_string(),
            Err(failed) => failed.reason.clone(),
        };
        if verdict {
            info!(site = %site, host = %h.name, address = %addr, "relay's key matches its TLSA records again");
        } else {
            warn!(
                site = %site, host = %h.name, address = %addr, %reason,
                "relay's key is not the one its TLSA records pin: another machine answers at its address, or its key changed without its records; a DANE sender would refuse it, and it is withdrawn"
            );
        }
        self.events.record(Event::tlsa(
            site,
            &h.name,
            addr,
            name(before),
            name(Some(verdict)),
            &reason,
        ));
        self.metrics
            .tlsa_mismatch
            .get_or_create(&AddressLabels {
                site: site.clone(),
                host: h.name.clone(),
                address: addr.to_string(),
            })
            .set(i64::from(!verdict));
    }

    /// Puts `smarthostd_tlsa_mismatch` in step with the addresses probed now: a series for
    /// each address of a pinned host (1 while its last verdict is a mismatch), none for any
    /// other; a host no longer pinned forgets its verdicts.
    pub(super) fn refresh_key_series(&mut self) {
        let topology = self.loaded.topology.clone();
        let mut wanted = rustc_hash::FxHashSet::default();
        for (id, h) in topology.hosts.iter().enumerate() {
            let pinned = !h.tlsa.is_empty();
            for a in &mut self.hosts[id].addresses {
                if !pinned {
                    a.key = None;
                    continue;
                }
                let labels = AddressLabels {
                    site: topology.sites[h.site].name.clone(),
                    host: h.name.clone(),
                    address: a.addr.to_string(),
                };
                self.metrics
                    .tlsa_mismatch
                    .get_or_create(&labels)
                    .set(i64::from(a.key == Some(false)));
                wanted.insert(labels);
            }
        }
        for gone in self.key_series.difference(&wanted) {
            self.metrics.tlsa_mismatch.remove(gone);
        }
        self.key_series = wanted;
    }
}
