//! What the health task keeps of each host and address between probes, and the health view
//! the answers are built from.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::hysteresis::Hysteresis;
use super::probes::ProbeHandle;
use crate::answer::{AddressHealth, HealthView, HostHealth};
use crate::metrics::AddressMetrics;
use crate::state::drains::Drain;

/// One address being probed.
pub(super) struct AddressRuntime {
    pub(super) addr: IpAddr,
    pub(super) probe: ProbeHandle,
    pub(super) hysteresis: Hysteresis,
    /// Why the last failed probe failed.
    pub(super) reason: Option<String>,
    pub(super) last_probe: Option<(SystemTime, Duration)>,
    pub(super) metrics: AddressMetrics,
    /// For a pinned host: whether the last chain checked matched its TLSA records (`None`
    /// until one is).
    pub(super) key: Option<bool>,
}

/// One host's addresses and drain.
pub(super) struct HostRuntime {
    pub(super) addresses: Vec<AddressRuntime>,
    pub(super) drain: Option<Drain>,
    /// Why the last resolution of a DNS-named host failed (`None` once one succeeds).
    pub(super) resolve_error: Option<String>,
}

/// The health view the answers are built from.
pub(super) fn view_of(hosts: &[HostRuntime]) -> HealthView {
    HealthView {
        hosts: hosts
            .iter()
            .map(|h| HostHealth {
                drained: h.drain.is_some(),
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
