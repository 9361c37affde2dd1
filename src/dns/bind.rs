//! Binding the DNS sockets before anything else runs, so that errors surface at start-up and
//! tests can bind port 0.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// UDP sockets (several per address, sharing it with SO_REUSEPORT) and TCP listeners.
#[derive(Debug)]
pub struct DnsSockets {
    /// `udp_per_address` sockets for each listen address, sharing it with SO_REUSEPORT; each gets a
    /// thread of its own.
    pub udp: Vec<std::net::UdpSocket>,
    /// One listener per listen address, in the order given.
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
    let addr = free_udp_address(addr)?;
    let first = udp_socket(addr)?;
    let bound = first.local_addr()?;
    let mut udp = vec![first];
    for _ in 1..count {
        udp.push(udp_socket(bound)?);
    }
    if count > 1 {
        steer_by_cpu(&udp[0], count)?;
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

/// Sends each datagram to the socket of the CPU that received it (cpu mod count), instead of
/// hashing flows over all of them: a busy CPU keeps its packets on one thread, so threads wake
/// less and batch more (the reuseport CPU steering of nginx and Knot).
fn steer_by_cpu(socket: &std::net::UdpSocket, count: usize) -> io::Result<()> {
    use nix::libc::{
        BPF_A, BPF_ABS, BPF_ALU, BPF_K, BPF_LD, BPF_MOD, BPF_RET, BPF_W, SKF_AD_CPU, SKF_AD_OFF,
    };
    let mut program = [
        bpf(BPF_LD | BPF_W | BPF_ABS, (SKF_AD_OFF + SKF_AD_CPU) as u32),
        bpf(BPF_ALU | BPF_MOD | BPF_K, count as u32),
        bpf(BPF_RET | BPF_A, 0),
    ];
    let prog = nix::libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    nix::sys::socket::setsockopt(
        socket,
        nix::sys::socket::sockopt::AttachReusePortCbpf,
        &prog,
    )
    .map_err(io::Error::from)
}

fn bpf(code: u32, k: u32) -> nix::libc::sock_filter {
    nix::libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `addr` if no socket holds it, with port 0 a port no socket holds. SO_REUSEPORT lets any
/// socket of the same user join a port (and the kernel hands out, for port 0, ports that such
/// sockets already hold): the group would then split the queries with another server, say a
/// second instance started on the same address. A socket without SO_REUSEPORT is refused
/// where anything listens, so it finds out; it is closed before the group binds.
fn free_udp_address(addr: SocketAddr) -> io::Result<SocketAddr> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_another_server_holds_is_refused_not_shared() {
        // Another server of the same user, holding its port with SO_REUSEPORT as ours do.
        let other = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = other.local_addr().unwrap();
        let e = bind(&[taken], 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains(&taken.to_string()), "{e}");
        // Port 0 finds a port of its own, shared by its own sockets only.
        let ours = bind(&["127.0.0.1:0".parse().unwrap()], 2).unwrap();
        let port = ours.udp[0].local_addr().unwrap().port();
        assert_ne!(port, taken.port());
        assert_eq!(ours.udp[1].local_addr().unwrap().port(), port);
    }
}
