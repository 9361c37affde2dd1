//! The DNS edge: sockets in, answers out, from the published snapshot.
//!
//! - [`query`]: the query model and the allocation-free parser for the common shape.
//! - [`slow`]: hickory-server's full parser for everything else.
//! - [`options`]: the OPT record's options (ECS, COOKIE), checked alike for both parsers.
//! - [`cookie`]: server cookies (RFC 7873, RFC 9018), made and checked with the secrets.
//! - [`respond`]: response bytes from a snapshot lookup.
//! - [`rrl`]: response rate limiting, which a valid server cookie is exempt from.
//! - [`udp`], [`tcp`], [`bind`]: sockets and their loops.
//!
//! Each query loads the snapshot once, so one answer never mixes two generations.

pub mod bind;
pub mod cookie;
pub(crate) mod options;
pub mod query;
pub(crate) mod reply_cache;
pub(crate) mod respond;
pub mod rrl;
pub mod slow;
pub(crate) mod tcp;
pub(crate) mod udp;

#[cfg(test)]
mod edns_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_server::net::xfer::Protocol;

use crate::answer::Snapshot;
use crate::metrics::Metrics;
use cookie::Cookies;
use query::{Fast, parse_fast};
use respond::{Client, Outcome, Responder};
use slow::{Slow, parse_slow};

use crate::transfer::{Signed, Transfers};

pub use bind::DnsSockets;

/// What every DNS socket task shares.
pub struct DnsShared {
    /// The current generation, swapped whole by the health task.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// EDNS UDP payload we advertise.
    pub edns_payload: u16,
    /// UDP response rate limiting, when on.
    pub rate_limiter: Option<rrl::RateLimiter>,
    /// The secrets of `server.cookies`.
    pub cookies: Cookies,
    /// Where each socket task gets its counters (`smarthostd_dns_*`).
    pub metrics: Arc<Metrics>,
    /// Zone transfers and TSIG-signed queries (`[transfer]`).
    pub transfers: Transfers,
}

/// Answers one message into `out` from the current snapshot; `None` when it deserves no answer.
pub fn handle(
    shared: &DnsShared,
    raw: &[u8],
    src: SocketAddr,
    tcp: bool,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    let snapshot = shared.snapshot.load();
    answer_signed(&snapshot, shared, raw, src, tcp, out)
}

/// Answers one message into `out` from `snapshot` as [`answer_with`] does, and a TSIG-signed
/// one (which the fast parser never takes) checked and signed with `shared.transfers`' keys.
pub fn answer_signed(
    snapshot: &Snapshot,
    shared: &DnsShared,
    raw: &[u8],
    src: SocketAddr,
    tcp: bool,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    answer_any(
        snapshot,
        shared.edns_payload,
        &shared.cookies,
        Some(&shared.transfers),
        raw,
        src,
        tcp,
        out,
    )
}

/// Answers one message into `out` from `snapshot`: the fast parser first, hickory-server's for
/// anything it does not vouch for. A TSIG is not checked: the message is answered unsigned.
pub fn answer_with(
    snapshot: &Snapshot,
    edns_payload: u16,
    cookies: &Cookies,
    raw: &[u8],
    src: SocketAddr,
    tcp: bool,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    answer_any(snapshot, edns_payload, cookies, None, raw, src, tcp, out)
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn answer_any(
    snapshot: &Snapshot,
    edns_payload: u16,
    cookies: &Cookies,
    transfers: Option<&Transfers>,
    raw: &[u8],
    src: SocketAddr,
    tcp: bool,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    let responder = Responder {
        snapshot,
        edns_payload,
        cookies,
    };
    let client = Client { ip: src.ip(), tcp };
    match parse_fast(raw) {
        Fast::Query(q) => Some(responder.answer(&q, client, out)),
        Fast::Drop => None,
        // A signed reply carries the time and its MAC; an unusual shape is not worth keeping.
        Fast::Unusual => unusual(&responder, transfers, raw, src, client, out).map(|o| Outcome {
            reusable: false,
            ..o
        }),
    }
}

/// Answers a message the fast parser passed on: a TSIG-signed request, or a shape only the
/// full parser reads.
fn unusual(
    responder: &Responder<'_>,
    transfers: Option<&Transfers>,
    raw: &[u8],
    src: SocketAddr,
    client: Client,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    if let Some(transfers) = transfers {
        let now = crate::dnssec::unix_seconds(std::time::SystemTime::now());
        let (snapshot, payload, cookies) = (
            responder.snapshot,
            responder.edns_payload,
            responder.cookies,
        );
        let answer = |stripped: &[u8], out: &mut Vec<u8>| {
            answer_with(snapshot, payload, cookies, stripped, src, client.tcp, out)
        };
        match transfers.signed_query(raw, src, now, out, answer) {
            Signed::Unsigned => {}
            Signed::Answered(outcome) => return outcome,
            Signed::NotAuth => return Some(Outcome::not_auth(raw)),
        }
    }
    let protocol = if client.tcp {
        Protocol::Tcp
    } else {
        Protocol::Udp
    };
    match parse_slow(raw, src, protocol) {
        Slow::Query(q) => Some(responder.answer(&q, client, out)),
        Slow::Error(e) => Some(responder.error(&e, out)),
        Slow::Drop => None,
    }
}

/// The optional query log (`RUST_LOG=smarthostd::query=debug`).
pub fn log_query(src: &SocketAddr, tcp: bool, outcome: &Outcome) {
    tracing::debug!(
        target: "smarthostd::query",
        client = %src,
        transport = if tcp { "tcp" } else { "udp" },
        qtype = outcome.qtype,
        rcode = outcome.rcode,
        truncated = outcome.truncated,
        warm = outcome.warm,
        "query"
    );
}
