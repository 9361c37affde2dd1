//! Descriptors, shared out at start: the soft limit is raised to the hard one, then the probes
//! and a fixed reserve come first (they decide the answers), and each TCP listener gets at most
//! its configured number of slots from what is left. A flood on one listener can then use its
//! own slots and nothing more.

use std::io;

use tracing::{info, warn};

/// Descriptors kept for everything not counted otherwise: log files, the state directory, the
/// resolvers of DNS-named hosts, runtime internals, a connection being accepted while another
/// is evicted.
pub(crate) const RESERVE: usize = 64;
/// Fewest slots a listener is given, however short descriptors are.
const MIN_SLOTS: usize = 4;

/// What each part of the server may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Demand {
    /// Descriptors open before serving (sockets bound, standard streams, runtimes).
    pub in_use: usize,
    /// Probes in flight at most, one socket each.
    pub probes: usize,
    /// Configured DNS-over-TCP connections.
    pub dns_tcp: usize,
    /// Configured admin connections.
    pub admin: usize,
    /// Control socket connections: kept whole, as the probes are, so that an operator always
    /// gets in.
    pub control: usize,
}

/// The slots each listener gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shares {
    /// DNS-over-TCP connections held at once, across every DNS listener (at most
    /// `server.tcp_max_connections`).
    pub dns_tcp: usize,
    /// Admin API connections held at once (at most `server.admin_max_connections`).
    pub admin: usize,
    /// Set when the limit forced fewer slots than configured.
    pub shortfall: Option<String>,
}

/// Shares `limit` descriptors out: probes, the reserve and what is in use first, then DNS over
/// TCP, then the admin API, each at most what it is configured for.
pub(crate) fn share(limit: u64, d: Demand) -> Shares {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let first = d.in_use + d.probes + d.control + RESERVE;
    let left = limit.saturating_sub(first);
    // Never more than configured; never fewer than a few, however short descriptors are.
    let dns_tcp = d.dns_tcp.min(left.saturating_sub(MIN_SLOTS).max(MIN_SLOTS));
    let admin = d.admin.min(left.saturating_sub(dns_tcp).max(MIN_SLOTS));
    let shortfall = (dns_tcp < d.dns_tcp || admin < d.admin).then(|| {
        format!(
            "the process may open {limit} descriptors; {} in use, {} for probes and {RESERVE} in \
             reserve leave room for {dns_tcp} of {} DNS-over-TCP connections and {admin} of {} \
             admin connections: raise the limit (systemd LimitNOFILE=) or lower \
             server.tcp_max_connections, server.admin_max_connections or probe.max_concurrent",
            d.in_use, d.probes, d.dns_tcp, d.admin
        )
    });
    Shares {
        dns_tcp,
        admin,
        shortfall,
    }
}

/// Raises the soft descriptor limit to the hard limit, as a server expecting many connections
/// should; returns the limit now in force.
pub(crate) fn raise_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// Descriptors this process has open now.
pub(crate) fn in_use() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Raises the limit and shares it out for `demand` (its `in_use` is read here), logging the
/// outcome.
pub(crate) fn plan(mut demand: Demand) -> Shares {
    let limit = match raise_limit() {
        Ok(limit) => limit,
        Err(error) => {
            warn!(%error, "cannot read the descriptor limit; assuming 1024");
            1024
        }
    };
    demand.in_use = in_use();
    let shares = share(limit, demand);
    match &shares.shortfall {
        Some(text) => warn!("{text}"),
        None => info!(
            limit,
            probes = demand.probes,
            dns_tcp_slots = shares.dns_tcp,
            admin_slots = shares.admin,
            "descriptors shared out"
        ),
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMAND: Demand = Demand {
        in_use: 20,
        probes: 100,
        dns_tcp: 256,
        admin: 32,
        control: 0,
    };

    #[test]
    fn a_large_limit_gives_every_listener_what_it_asks_for() {
        let s = share(65_536, DEMAND);
        assert_eq!((s.dns_tcp, s.admin, s.shortfall), (256, 32, None));
    }

    #[test]
    fn a_small_limit_keeps_the_probes_whole_and_shrinks_the_listeners() {
        // 400 - 20 - 100 - 64 = 216 left: DNS over TCP first, the admin API what remains.
        let s = share(400, DEMAND);
        assert_eq!((s.dns_tcp, s.admin), (212, 4));
        assert!(s.shortfall.unwrap().contains("LimitNOFILE"));
        assert_eq!(
            DEMAND.in_use + DEMAND.probes + RESERVE + s.dns_tcp + s.admin,
            400
        );
    }

    #[test]
    fn a_listener_never_gets_more_than_configured() {
        let small = Demand {
            dns_tcp: 2,
            admin: 1,
            ..DEMAND
        };
        let s = share(100, small);
        assert_eq!((s.dns_tcp, s.admin), (2, 1));
    }

    #[test]
    fn the_control_socket_is_served_before_the_listeners() {
        let with_control = Demand {
            control: 8,
            ..DEMAND
        };
        let s = share(400, with_control);
        assert_eq!((s.dns_tcp, s.admin), (204, 4));
    }

    #[test]
    fn below_the_minimum_each_listener_keeps_a_few_slots() {
        let s = share(100, DEMAND);
        assert_eq!((s.dns_tcp, s.admin), (MIN_SLOTS, MIN_SLOTS));
        assert!(s.shortfall.is_some());
    }
}
