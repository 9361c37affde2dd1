//! Who is who in `cluster.peers`: every instance may share one config file, so the list names
//! this instance too, and it must find itself there and leave itself out.
//!
//! An entry is this instance when it is the address its admin listener is bound to; with an
//! unspecified bind address (`0.0.0.0:8053`, `[::]:8053`), when its port is the listener's and
//! its address is one of this machine's (its interfaces' addresses, or loopback).

use std::net::{IpAddr, SocketAddr};

/// The entries of `peers` that are other instances, for an admin listener bound to `admin`.
pub(crate) fn others(peers: &[SocketAddr], admin: SocketAddr) -> Vec<SocketAddr> {
    let local = local_addresses();
    peers
        .iter()
        .copied()
        .filter(|&p| !is_self(p, admin, &local))
        .collect()
}

/// This instance's name: its entry in `peers` (the name every peer knows it by), else its
/// admin address, with this machine's name in place of an unspecified address.
pub(crate) fn own_name(peers: &[SocketAddr], admin: Option<SocketAddr>) -> String {
    let Some(admin) = admin else {
        return host_name();
    };
    let local = local_addresses();
    if let Some(me) = peers.iter().find(|&&p| is_self(p, admin, &local)) {
        return me.to_string();
    }
    if admin.ip().is_unspecified() {
        format!("{}:{}", host_name(), admin.port())
    } else {
        admin.to_string()
    }
}

/// Whether `peer` is the admin listener bound to `admin` on a machine with addresses `local`.
fn is_self(peer: SocketAddr, admin: SocketAddr, local: &[IpAddr]) -> bool {
    if admin.ip().is_unspecified() {
        let same_family = peer.is_ipv4() == admin.is_ipv4()
            // A `[::]` listener takes IPv4 too, unless the system says otherwise.
            || admin.is_ipv6();
        peer.port() == admin.port()
            && same_family
            && (peer.ip().is_loopback() || local.contains(&peer.ip()))
    } else {
        peer == admin
    }
}

/// This machine's interface addresses; none when they cannot be listed.
fn local_addresses() -> Vec<IpAddr> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|a| {
            let address = a.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// This machine's name, for an instance's name when its admin address says nothing.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| crate::state::hlc::valid_origin(s))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bound_address_finds_itself_exactly() {
        let peers = [
            a("127.0.0.1:8053"),
            a("127.0.0.1:8054"),
            a("10.0.0.53:8053"),
        ];
        assert_eq!(
            others(&peers, a("127.0.0.1:8053")),
            [a("127.0.0.1:8054"), a("10.0.0.53:8053")]
        );
        assert_eq!(
            own_name(&peers, Some(a("127.0.0.1:8054"))),
            "127.0.0.1:8054"
        );
    }

    #[test]
    fn an_unspecified_bind_finds_itself_by_port_and_local_address() {
        let local = [IpAddr::from([10, 0, 0, 53])];
        let any = a("0.0.0.0:8053");
        assert!(is_self(a("10.0.0.53:8053"), any, &local));
        assert!(is_self(a("127.0.0.1:8053"), any, &local));
        assert!(!is_self(a("10.0.0.53:8054"), any, &local), "another port");
        assert!(
            !is_self(a("10.0.1.53:8053"), any, &local),
            "another machine"
        );
        assert!(!is_self(a("[::1]:8053"), any, &local), "an IPv4 listener");
        assert!(is_self(a("[::1]:8053"), a("[::]:8053"), &local));
    }

    #[test]
    fn an_instance_missing_from_the_list_is_named_by_its_address() {
        let peers = [a("10.0.1.53:8053")];
        assert_eq!(
            own_name(&peers, Some(a("10.0.0.53:8053"))),
            "10.0.0.53:8053"
        );
        let name = own_name(&peers, Some(a("0.0.0.0:8099")));
        assert!(
            name.ends_with(":8099") && !name.starts_with("0.0.0.0"),
            "{name}"
        );
    }

    #[test]
    fn this_machines_loopback_address_is_among_its_own() {
        assert!(local_addresses().iter().any(IpAddr::is_loopback));
    }
}
