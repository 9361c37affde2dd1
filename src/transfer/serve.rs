//! Answering secondaries: AXFR and IXFR over TCP, and any TSIG-signed query (the SOA checks
//! secondaries make), signed with the request's key.
//!
//! A transfer is refused (REFUSED) to a client outside `transfer.allow`, and without a valid
//! TSIG while `require_tsig`; a TSIG that does not verify is answered NOTAUTH with the TSIG
//! error (BADKEY, BADSIG, BADTIME) as RFC 8945 section 5.2 says. Each refusal is a log line
//! naming the client and the reason, never a secret.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Name;
use ipnet::IpNet;
use tracing::warn;

use super::tsig::{Checked, Keys, NOTAUTH, Session, error_name};
use super::zone::{History, ixfr_serial};
use crate::answer::Snapshot;
use crate::config::TransferConfig;
use crate::state::serial::serial_after;
use crate::wire::HEADER_LEN;
use crate::wire::{TYPE_AXFR, TYPE_IXFR, TYPE_TSIG};

/// What became of a message that may carry a TSIG.
pub enum Signed<T> {
    /// It carries none: answer it as any query.
    Unsigned,
    /// It verified; this is the answer's outcome (the answer in `out`, signed).
    Answered(Option<T>),
    /// It did not verify: `out` holds the NOTAUTH answer.
    NotAuth,
}

/// Who may transfer the zone, and with which keys.
#[derive(Debug, Default)]
pub struct Transfers {
    allow: Vec<IpNet>,
    require_tsig: bool,
    keys: Keys,
    log: std::sync::Mutex<RefusalLog>,
    /// The versions transferred lately, for incremental transfers.
    history: History,
}

impl Transfers {
    /// The policy of `[transfer]`; without the table every transfer is refused.
    pub fn new(config: Option<&TransferConfig>) -> Self {
        match config {
            Some(c) => Self {
                allow: c.allow.clone(),
                require_tsig: c.require_tsig,
                keys: Keys::new(&c.tsig),
                log: Default::default(),
                history: History::default(),
            },
            None => Self {
                allow: Vec::new(),
                require_tsig: true,
                keys: Keys::default(),
                log: Default::default(),
                history: History::default(),
            },
        }
    }

    /// The keys, NOTIFY's first.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Answers a zone transfer request (AXFR or IXFR, over TCP) from `src` at `now` (seconds
    /// since the epoch): every message to send, in order; empty when the request is not one
    /// (then it is answered as any query).
    pub fn transfer(
        &self,
        snapshot: &Snapshot,
        raw: &[u8],
        src: SocketAddr,
        now: u64,
    ) -> Vec<Vec<u8>> {
        let Ok(request) = Message::from_vec(raw) else {
            return Vec::new();
        };
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
            || request.queries.len() != 1
        {
            return Vec::new();
        }
        let question = &request.queries[0];
        let mut session = match self.keys.check(&request, raw, now) {
            Checked::Valid(session) => Some(session),
            Checked::Unsigned if !self.require_tsig => None,
            Checked::Unsigned => {
                return vec![self.refuse(&request, src, "no TSIG", None)];
            }
            Checked::Bad(bad) => {
                let reason = format!("{}: TSIG {}", bad.reason, error_name(bad.error()));
                self.log_refused(src, &reason, Some(&bad.key));
                let mut reply = empty(&request, NOTAUTH);
                bad.append(&mut reply);
                return vec![reply];
            }
        };
        if !self.allow.iter().any(|n| n.contains(&src.ip())) {
            return vec![self.refuse(&request, src, "address not in transfer.allow", session)];
        }
        let zone = match self.history.of(snapshot) {
            Some(zone) if zone.soa.name == *question.name() => zone,
            _ => return vec![self.refuse(&request, src, "not the zone's apex", session)],
        };
        let id = request.metadata.id;
        let theirs =
            ixfr_serial(&request).filter(|_| u16::from(question.query_type()) == TYPE_IXFR);
        let (mut messages, kind) = match theirs {
            Some(theirs) if !serial_after(zone.serial(), theirs) => {
                (vec![zone.up_to_date(id, question)], "up to date")
            }
            Some(theirs) => match self.history.find(theirs) {
                Some(old) => (zone.incremental(&old, id, question), "incremental"),
                None => (zone.messages(id, question), "full"),
            },
            None => (zone.messages(id, question), "full"),
        };
        if let Some(session) = session.as_mut() {
            for message in &mut messages {
                session.sign(message);
            }
        }
        tracing::info!(client = %src, serial = zone.serial(), from = theirs, kind, messages = messages.len(), key = session.as_ref().map(|s| s.key().to_string()), "zone transferred");
        messages
    }

    /// Answers a TSIG-signed query that is not a transfer: `answer` answers it with the TSIG
    /// taken off, and the answer is signed with the same key.
    pub fn signed_query<T>(
        &self,
        raw: &[u8],
        src: SocketAddr,
        now: u64,
        out: &mut Vec<u8>,
        answer: impl FnOnce(&[u8], &mut Vec<u8>) -> Option<T>,
    ) -> Signed<T> {
        if !has_tsig(raw) {
            return Signed::Unsigned;
        }
        let Ok(mut request) = Message::from_vec(raw) else {
            return Signed::Unsigned;
        };
        match self.keys.check(&request, raw, now) {
            Checked::Unsigned => Signed::Unsigned,
            Checked::Bad(bad) => {
                let reason = format!("{}: TSIG {}", bad.reason, error_name(bad.error()));
                self.log_refused(src, &reason, Some(&bad.key));
                out.clear();
                out.extend_from_slice(&empty(&request, NOTAUTH));
                bad.append(out);
                Signed::NotAuth
            }
            Checked::Valid(mut session) => {
                request.signature = None;
                let Ok(stripped) = request.to_vec() else {
                    return Signed::Unsigned;
                };
                let outcome = answer(&stripped, out);
                if outcome.is_some() {
                    session.sign(out);
                }
                Signed::Answered(outcome)
            }
        }
    }

    fn refuse(
        &self,
        request: &Message,
        src: SocketAddr,
        reason: &str,
        session: Option<Session>,
    ) -> Vec<u8> {
        self.log_refused(src, reason, session.as_ref().map(|s| s.key()));
        let mut reply = empty(request, crate::wire::rcode::REFUSED);
        if let Some(mut session) = session {
            session.sign(&mut reply);
        }
        reply
    }
}

/// Refusal lines logged per second at most: a client that floods refused requests must not
/// flood the log; the lines left out are counted in the next one.
pub const REFUSALS_LOGGED_PER_SECOND: u32 = 20;

/// The log's share of refusals in the current second.
#[derive(Debug, Default)]
struct RefusalLog {
    second: u64,
    logged: u32,
    suppressed: u64,
}

impl Transfers {
    fn log_refused(&self, src: SocketAddr, reason: &str, key: Option<&Name>) {
        let now = crate::dnssec::unix_seconds(std::time::SystemTime::now());
        let suppressed = {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            if log.second != now {
                log.second = now;
                log.logged = 0;
            }
            if log.logged >= REFUSALS_LOGGED_PER_SECOND {
                log.suppressed += 1;
                return;
            }
            log.logged += 1;
            std::mem::take(&mut log.suppressed)
        };
        let key = key.map(|k| crate::network_text::clean(&k.to_string(), 80));
        warn!(client = %src, reason, key, suppressed, "zone transfer refused");
    }
}

/// A response with the request's header and question and no records, with `rcode`.
fn empty(request: &Message, rcode: u8) -> Vec<u8> {
    let mut m = Message::response(request.metadata.id, request.metadata.op_code);
    m.metadata.recursion_desired = request.metadata.recursion_desired;
    m.metadata.response_code = ResponseCode::from(0, rcode);
    m.add_queries(request.queries.iter().cloned());
    m.to_vec().unwrap_or_default()
}

/// The query type of a message's first question, read from its bytes: zone transfers leave
/// the ordinary answer path here.
pub fn question_type(raw: &[u8]) -> Option<u16> {
    if raw.len() < HEADER_LEN || u16::from_be_bytes([raw[4], raw[5]]) == 0 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*raw.get(at)?);
        if len & 0xC0 != 0 {
            return None;
        }
        at += len + 1;
        if len == 0 {
            break;
        }
    }
    Some(u16::from_be_bytes([*raw.get(at)?, *raw.get(at + 1)?]))
}

/// Whether a message's question asks for a zone transfer.
pub fn is_transfer(raw: &[u8]) -> bool {
    matches!(question_type(raw), Some(TYPE_AXFR | TYPE_IXFR))
}

/// Whether a message's last record is a TSIG (RFC 8945 section 4.2: it must be the last),
/// read from its bytes.
pub fn has_tsig(raw: &[u8]) -> bool {
    if raw.len() < HEADER_LEN || u16::from_be_bytes([raw[10], raw[11]]) == 0 {
        return false;
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([raw[i], raw[i + 1]]));
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        match skip_name(raw, at) {
            Some(end) => at = end + 4,
            None => return false,
        }
    }
    let records = count(6) + count(8) + count(10);
    for i in 0..records {
        let Some(fixed) = skip_name(raw, at) else {
            return false;
        };
        let Some(header) = raw.get(fixed..fixed + 10) else {
            return false;
        };
        let end = fixed + 10 + usize::from(u16::from_be_bytes([header[8], header[9]]));
        if i + 1 == records {
            // The last record, whole, and nothing after it.
            return u16::from_be_bytes([header[0], header[1]]) == TYPE_TSIG && end == raw.len();
        }
        at = end;
    }
    false
}

/// Where the name at `at` ends.
fn skip_name(raw: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *raw.get(at)? {
            0 => return Some(at + 1),
            len if len & 0xC0 == 0xC0 => return Some(at + 2),
            len if len & 0xC0 != 0 => return None,
            len => at += 1 + usize::from(len),
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::{has_tsig, is_transfer, question_type};

    fn query(rtype: RecordType, signed: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_ascii("smarthost.internal.").unwrap(),
            rtype,
        ));
        m.set_edns(hickory_proto::op::Edns::new());
        if signed {
            let key = hickory_proto::rr::TSigner::new(
                vec![7; 32],
                hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
                Name::from_ascii("k.").unwrap(),
                300,
            )
            .unwrap();
            let (tsig, _) = key.sign_message(&m, 1_700_000_000).unwrap();
            m.set_signature(tsig);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn transfers_and_signatures_are_told_from_the_bytes_and_truncation_is_neither() {
        let axfr = query(RecordType::AXFR, false);
        assert!(is_transfer(&axfr) && !has_tsig(&axfr), "OPT is not a TSIG");
        assert!(is_transfer(&query(RecordType::IXFR, true)));
        assert!(!is_transfer(&query(RecordType::SOA, false)));
        let signed = query(RecordType::SOA, true);
        assert!(has_tsig(&signed));
        assert_eq!(question_type(&signed), Some(6));
        for cut in 0..signed.len() {
            assert!(!has_tsig(&signed[..cut]), "cut at {cut}");
            let _ = question_type(&signed[..cut]);
        }
        for cut in 0..axfr.len() - 4 {
            assert!(!is_transfer(&axfr[..cut]) || cut >= 12 + 20, "cut at {cut}");
        }
        // A pointer in the question, and a label-length byte that is neither: no answer.
        let mut pointer = axfr.clone();
        pointer[12] = 0xC0;
        assert_eq!(question_type(&pointer), None);
        pointer[12] = 0x80;
        assert_eq!(question_type(&pointer), None);
    }
}
