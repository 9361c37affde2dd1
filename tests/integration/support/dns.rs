//! A DNS client on hickory-proto: queries over UDP and TCP, raw or parsed, and what tests read
//! from the answers.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a UDP client waits for one response.
const UDP_WAIT: Duration = Duration::from_secs(2);

/// A query message.
pub(crate) fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(fastrand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m
}

fn fastrand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(4242);
    ID.fetch_add(1, Ordering::Relaxed)
}

/// Sends raw bytes over UDP; `None` when no response comes.
pub(crate) async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_raw_from(&socket, server, bytes).await
}

/// Sends raw bytes over UDP from `socket`.
pub(crate) async fn udp_raw_from(
    socket: &UdpSocket,
    server: SocketAddr,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(UDP_WAIT, socket.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// A UDP query with EDNS (payload 1232), parsed.
pub(crate) async fn udp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    udp_message(server, &query(name, rtype, Some(1232))).await
}

/// Sends `message` over UDP and parses the response.
pub(crate) async fn udp_message(server: SocketAddr, message: &Message) -> Message {
    let bytes = udp_raw(server, &message.to_vec().unwrap())
        .await
        .expect("a UDP response");
    let response = Message::from_vec(&bytes).expect("a parseable response");
    assert_eq!(response.metadata.id, message.metadata.id);
    response
}

/// Sends raw bytes as one TCP message and returns the raw response.
pub(crate) async fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    read_framed(&mut stream).await.expect("a TCP response")
}

/// Reads one length-prefixed message.
pub(crate) async fn read_framed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(UDP_WAIT, stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(UDP_WAIT, stream.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf)
}

/// A TCP query, parsed.
pub(crate) async fn tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = query(name, rtype, None);
    Message::from_vec(&tcp_raw(server, &q.to_vec().unwrap()).await).unwrap()
}

/// The (preference, exchange) pairs of an MX answer, exchange in lower case.
pub(crate) fn mx_set(m: &Message) -> Vec<(u16, String)> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii().to_ascii_lowercase())),
            _ => None,
        })
        .collect()
}

/// (owner, address) of each A/AAAA record in the additional section.
pub(crate) fn additional_addresses(m: &Message) -> Vec<(String, String)> {
    m.additionals
        .iter()
        .filter_map(|r| {
            r.data
                .ip_addr()
                .map(|ip| (r.name.to_ascii().to_ascii_lowercase(), ip.to_string()))
        })
        .collect()
}

/// `(pref, "host.site.smarthost.internal.")`.
pub(crate) fn mx(pref: u16, host: &str) -> (u16, String) {
    (pref, format!("{host}.smarthost.internal."))
}
