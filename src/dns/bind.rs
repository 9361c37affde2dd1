//! Binding the DNS sockets before anything else runs, so that errors surface at start-up and
//! tests can bind port 0.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// UDP sockets (several per address, sharing it with SO_REUSEPORT) and TCP listeners.
#[derive(Debug)]
pub struct DnsSockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

impl DnsSockets {
    /// The addresses actually bound (port 0 resolved), one per listen address.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// How often binding port 0 retries when the TCP port the kernel picked for UDP is taken.
const PORT_ZERO_ATTEMPTS: usize = 20;

/// Binds UDP and TCP on every address; `udp_per_address` sockets share each UDP address.
pub fn bind(listen: &[SocketAddr], udp_per_address: usize) -> io::Result<DnsSockets> {
    let mut sockets = DnsSockets {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    for &addr in listen {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match bind_one(addr, udp_per_address.max(1)) {
                Ok((udp, tcp)) => {
                    sockets.udp.extend(udp);
                    sockets.tcp.push(tcp);
                    break;
                }
                Err(e)
                    if addr.port() == 0
                        && attempt < PORT_ZERO_ATTEMPTS
                        && e.kind() == io::ErrorKind::AddrInUse => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {addr}: {e}"),
                    ));
                }
            }
        }
    }
    Ok(sockets)
}

fn bind_one(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener)> {
    let first = udp_socket(addr)?;
    let bound = first.local_addr()?;
    let mut udp = vec![first];
    for _ in 1..count {
        udp.push(udp_socket(bound)?);
    }
    let tcp = Socket::new(
        Domain::for_address(bound),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    tcp.set_reuse_address(true)?;
    if bound.is_ipv6() {
        tcp.set_only_v6(true)?;
    }
    tcp.set_nonblocking(true)?;
    tcp.bind(&bound.into())?;
    tcp.listen(1024)?;
    Ok((udp, tcp.into()))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
