//! NOTIFY (RFC 1996): each generation whose transferred content changed is announced to every
//! `transfer.notify` secondary, TSIG-signed with the first key, so that it transfers at once
//! instead of at its next SOA refresh.
//!
//! Per secondary: at most one NOTIFY per [`COALESCE`], always for the latest serial, so a burst
//! of changes costs the secondary one transfer per second at most and delays none by more than
//! that; an unanswered NOTIFY is sent again after 1, 2, 4 and 8 s ([`TRIES`], doubling from
//! [`FIRST_WAIT`]); any answer stops it, and a newer serial replaces it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, Record, RecordType, TSigner};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::tsig::Session;
use super::zone;
use crate::answer::Snapshot;
use crate::wire::TYPE_SOA;

/// At most one NOTIFY per secondary in this time: the bound a burst of changes adds.
pub const COALESCE: Duration = Duration::from_secs(1);
/// NOTIFY sends for one serial before giving up (the secondary still polls at its refresh).
pub const TRIES: u32 = 5;
/// The wait for an answer to the first send; each retry waits twice as long.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Starts announcing changes to `targets`: one task per secondary and one watching `snapshot`,
/// woken by `published`, until `shutdown`.
pub fn spawn(
    snapshot: Arc<ArcSwap<Snapshot>>,
    published: Arc<Notify>,
    targets: Vec<SocketAddr>,
    key: Option<TSigner>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) {
    if targets.is_empty() {
        return;
    }
    let (latest, _) = watch::channel::<Option<Arc<Record>>>(None);
    for target in targets {
        tracker.spawn(secondary(
            target,
            latest.subscribe(),
            key.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(async move {
        let mut last = None;
        loop {
            tokio::select! {
                () = published.notified() => {}
                () = shutdown.cancelled() => return,
            }
            let snap = snapshot.load_full();
            let print = fingerprint(&snap);
            if last == Some(print) {
                continue;
            }
            last = Some(print);
            if let Some(soa) = zone::soa(&snap) {
                latest.send_replace(Some(Arc::new(soa)));
            }
        }
    });
}

/// What a transfer holds besides the SOA (whose serial and signature change every
/// generation): equal prints, nothing for a secondary to fetch. Independent of order.
pub fn fingerprint(snapshot: &Snapshot) -> u64 {
    let view = snapshot.topology.view_index(snapshot.topology.default_view);
    let mut bytes = Vec::new();
    snapshot
        .enumerate(view, true)
        .filter(|(_, rtype, _)| *rtype != TYPE_SOA)
        .map(|(owner, rtype, answer)| {
            bytes.clear();
            answer.write_to(&mut bytes, true);
            let mut h = DefaultHasher::new();
            owner.hash(&mut h);
            rtype.hash(&mut h);
            bytes.hash(&mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add)
}

/// One secondary's NOTIFY loop.
async fn secondary(
    target: SocketAddr,
    mut latest: watch::Receiver<Option<Arc<Record>>>,
    key: Option<TSigner>,
    shutdown: CancellationToken,
) {
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) if s.connect(target).await.is_ok() => s,
        Ok(_) | Err(_) => {
            warn!(secondary = %target, "cannot open a socket to send NOTIFY to this secondary");
            return;
        }
    };
    let mut last_sent: Option<Instant> = None;
    let mut pending = false;
    loop {
        if !pending {
            tokio::select! {
                r = latest.changed() => if r.is_err() { return },
                () = shutdown.cancelled() => return,
            }
        }
        if let Some(at) = last_sent {
            tokio::select! {
                () = tokio::time::sleep_until(at + COALESCE) => {}
                () = shutdown.cancelled() => return,
            }
        }
        let Some(soa) = latest.borrow_and_update().clone() else {
            pending = false;
            continue;
        };
        last_sent = Some(Instant::now());
        pending = tokio::select! {
            newer = notify(&socket, target, &soa, key.as_ref(), &mut latest) => newer,
            () = shutdown.cancelled() => return,
        };
    }
}

/// Sends NOTIFY for `soa` until answered, [`TRIES`] times at most; `true` when a newer serial
/// came meanwhile (it is sent next, without waiting for another change).
async fn notify(
    socket: &UdpSocket,
    target: SocketAddr,
    soa: &Record,
    key: Option<&TSigner>,
    latest: &mut watch::Receiver<Option<Arc<Record>>>,
) -> bool {
    let serial = match &soa.data {
        RData::SOA(s) => s.serial,
        _ => 0,
    };
    let mut wait = FIRST_WAIT;
    for attempt in 1..=TRIES {
        let id = fastrand::u16(..);
        let (bytes, mac) = message(id, soa, key);
        if let Err(error) = socket.send(&bytes).await {
            debug!(secondary = %target, %error, "NOTIFY not sent");
        }
        tokio::select! {
            r = tokio::time::timeout(wait, answer(socket, id)) => if let Ok(rcode) = r {
                let verified = key.is_none_or(|k| rcode.1.as_deref().is_some_and(|b| k.verify_message_byte(b, Some(&mac), true).is_ok()));
                if rcode.0 == 0 && verified {
                    info!(secondary = %target, serial, attempt, "NOTIFY answered");
                } else {
                    warn!(secondary = %target, serial, rcode = rcode.0, signed_answer = verified, "NOTIFY answered with an error: check the secondary's key and its primaries");
                }
                return false;
            },
            r = latest.changed() => return r.is_ok(),
        }
        wait *= 2;
    }
    warn!(secondary = %target, serial, tries = TRIES, "NOTIFY never answered; the secondary will see the change at its next SOA refresh");
    false
}

/// A NOTIFY for `soa` with message ID `id`, signed with `key` when there is one, and the MAC
/// its answer is signed over.
fn message(id: u16, soa: &Record, key: Option<&TSigner>) -> (Vec<u8>, Vec<u8>) {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(soa.name.clone(), RecordType::SOA));
    m.add_answer(soa.clone());
    let mut bytes = m.to_vec().unwrap_or_default();
    let Some(key) = key else {
        return (bytes, Vec::new());
    };
    let now = crate::dnssec::unix_seconds(SystemTime::now());
    let mut session = Session::start(key, id, now);
    session.sign(&mut bytes);
    (bytes, session.mac().to_vec())
}

/// Waits for the answer to NOTIFY `id`: its RCODE, and its bytes when it carries a TSIG.
async fn answer(socket: &UdpSocket, id: u16) -> (u8, Option<Vec<u8>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else {
            // An ICMP error (nothing listens): keep waiting for the retry.
            std::future::pending::<()>().await;
            continue;
        };
        let reply = &buf[..n];
        // ID, QR set, opcode NOTIFY (4).
        if n >= 12 && u16::from_be_bytes([reply[0], reply[1]]) == id && reply[2] & 0xF8 == 0xA0 {
            let signed = super::serve::has_tsig(reply).then(|| reply.to_vec());
            return (reply[3] & 0x0F, signed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::fingerprint;
    use crate::answer::HealthView;
    use crate::test_support::{config_from, topology};

    const CONFIG: &str = "[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n\
        [sites.a]\nhosts = [ { name = \"m\", addresses = [\"192.0.2.1\"] }, { name = \"n\", addresses = [\"192.0.2.2\"] } ]\n";
    const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 300\n\
        @ IN SOA ns1 hostmaster ( 7 3600 600 86400 60 )\n@ IN NS ns1\nns1 IN A 127.0.0.53\n";

    #[test]
    fn a_new_serial_alone_is_no_change_for_secondaries_and_a_new_answer_is() {
        let config = config_from(CONFIG);
        let topology = Arc::new(topology(&config));
        let zone = crate::zone::StaticZone::parse(
            std::path::Path::new("z.zone"),
            ZONE.to_string(),
            &topology.origin,
        )
        .unwrap();
        let build = |health: HealthView, serial: u32| {
            crate::answer::build(
                topology.clone(),
                &zone,
                Arc::new(health),
                &Default::default(),
                serial,
                1,
                None,
            )
            .unwrap()
        };
        let up = fingerprint(&build(HealthView::all_up(&topology), 10));
        assert_eq!(up, fingerprint(&build(HealthView::all_up(&topology), 11)));
        let mut one_down = HealthView::all_up(&topology);
        one_down.hosts[1].drained = true;
        assert_ne!(up, fingerprint(&build(one_down, 12)));
    }
}
