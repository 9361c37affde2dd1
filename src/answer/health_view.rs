//! The health view: what the answer builder knows of each host, one entry per address. The
//! health task makes it; answers are built from it.

use std::net::IpAddr;

use crate::topology::{HostId, Topology};

/// The verdict on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not probed to a verdict yet: not named in answers except in the failsafe. DNS answers
    /// only once every address has had its first probe, so this is rare outside start-up.
    Unknown,
    /// The first probe passed, or `rise` in a row since it was down: answers may name it.
    Up,
    /// The first probe failed, or `fall` in a row since it was up: only the failsafe names it.
    Down,
}

impl State {
    /// The lower-case name, for logs, metrics and status.
    pub fn name(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// One address of a host and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressHealth {
    /// The address probed, listed in the host's A/AAAA records while it serves.
    pub addr: IpAddr,
    /// What the probes say of it.
    pub state: State,
    /// The last probe disagreed with the state: a transition may be under way.
    pub pending: bool,
}

impl AddressHealth {
    /// Whether answers may name this address: only after a probe said it works.
    pub fn serves(&self) -> bool {
        self.state == State::Up
    }

    /// Whether answers naming this address should be cached for less time.
    pub fn degraded(&self) -> bool {
        self.state == State::Down || self.pending
    }
}

/// One host: its addresses and whether an operator drained it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostHealth {
    /// Every address of the host (configured, or resolved from its `fqdn`), each with its verdict.
    pub addresses: Vec<AddressHealth>,
    /// Taken out of answers by an operator, but still probed.
    pub drained: bool,
}

impl HostHealth {
    /// Whether the host may be named in an MX answer outside the failsafe.
    pub fn healthy(&self) -> bool {
        !self.drained && self.addresses.iter().any(AddressHealth::serves)
    }

    /// Whether any address is down or in transition.
    pub fn degraded(&self) -> bool {
        self.addresses.iter().any(AddressHealth::degraded)
    }

    /// The addresses its A/AAAA records list: the serving ones, or every known one when none
    /// serves (a name in an answer must always resolve).
    pub fn served_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let any_serving = self.addresses.iter().any(AddressHealth::serves);
        self.addresses
            .iter()
            .filter(move |a| !any_serving || a.serves())
            .map(|a| a.addr)
    }
}

/// Health of every host of a topology, indexed by [`HostId`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthView {
    /// Each host's health; a [`HostId`] indexes it as it does [`Topology::hosts`].
    pub hosts: Vec<HostHealth>,
}

impl HealthView {
    /// Every configured address with no verdict yet: the state before the first probe round.
    pub fn unknown(topology: &Topology) -> Self {
        Self::every_address(topology, State::Unknown)
    }

    /// Every configured address up: the largest answers a configuration can produce (for
    /// checking their size) and the common case in tests.
    pub fn all_up(topology: &Topology) -> Self {
        Self::every_address(topology, State::Up)
    }

    fn every_address(topology: &Topology, state: State) -> Self {
        Self {
            hosts: topology
                .hosts
                .iter()
                .map(|h| HostHealth {
                    addresses: h
                        .addresses
                        .iter()
                        .map(|&addr| AddressHealth {
                            addr,
                            state,
                            pending: false,
                        })
                        .collect(),
                    drained: false,
                })
                .collect(),
        }
    }

    /// The health of host `id`.
    pub fn host(&self, id: HostId) -> &HostHealth {
        &self.hosts[id]
    }

    /// Sets every address of `host` to `state` (tests and tools).
    pub fn set_host(&mut self, host: HostId, state: State) {
        for a in &mut self.hosts[host].addresses {
            a.state = state;
            a.pending = false;
        }
    }

    /// Sets one address of `host` to `state` (tests and tools).
    pub fn set_address(&mut self, host: HostId, addr: IpAddr, state: State) {
        for a in &mut self.hosts[host].addresses {
            if a.addr == addr {
                a.state = state;
                a.pending = false;
            }
        }
    }
}
