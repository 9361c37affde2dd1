//! Turning a parsed query into response bytes: header, the client's question, the prepared
//! sections, and an OPT record. No lock, no I/O, no allocation once `out` has grown.

use std::net::IpAddr;

use super::cookie::{Cookies, REPLY_LEN};
use super::options::ClientSubnet;
use super::query::Query;
use super::slow::ErrorReply;
use crate::answer::{Answer, Lookup, Snapshot};
use crate::metrics::{Answered, CookieSeen};
use crate::topology::View;
use crate::wire::rcode::{BADVERS, BADVERS_EXTENDED, FORMERR, REFUSED};
use crate::wire::{CLASS_IN, OPTION_CLIENT_SUBNET, OPTION_COOKIE, TYPE_OPT};

/// The payload limit of a UDP response to a client without EDNS (RFC 1035 section 4.2.1).
const PLAIN_UDP_LIMIT: usize = 512;

/// Where a query came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// The source address: it decides `allow_query`, the view, and whether an ECS option is
    /// believed.
    pub ip: IpAddr,
    /// Whether it came over TCP, where any answer fits and none is truncated.
    pub tcp: bool,
}

/// What was answered, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The full RCODE (BADVERS is 16).
    pub rcode: u16,
    /// The type asked for (0 when no question could be read).
    pub qtype: u16,
    /// Sent with TC set and no records: too large for the client's UDP payload.
    pub truncated: bool,
    /// The warm-standby variant was served.
    pub warm: bool,
    /// Refused by `server.allow_query`.
    pub denied: bool,
    /// Length of the question echoed (0 when none), for truncating a response to it.
    pub question_len: usize,
    /// The query's COOKIE option: a valid server cookie exempts it from rate limiting.
    pub cookie: CookieSeen,
    /// The response depends on nothing but the query's bytes (its ID aside) and the snapshot:
    /// no cookie, no client subnet, no view, no warm-standby pick. Another client allowed to
    /// query may be sent the same bytes with its own ID ([`ReplyCache`](super::reply_cache)).
    pub reusable: bool,
}

impl Outcome {
    /// A request whose TSIG did not verify, answered NOTAUTH (RFC 8945 section 5.2).
    pub fn not_auth(raw: &[u8]) -> Self {
        Self {
            rcode: u16::from(crate::transfer::tsig::NOTAUTH),
            qtype: crate::transfer::serve::question_type(raw).unwrap_or(0),
            truncated: false,
            warm: false,
            denied: true,
            question_len: 0,
            cookie: CookieSeen::Absent,
            reusable: false,
        }
    }

    /// What the metrics count of it.
    pub fn counted(&self) -> Answered {
        Answered {
            qtype: self.qtype,
            rcode: self.rcode,
            truncated: self.truncated,
            denied: self.denied,
        }
    }
}

/// Answers queries from one snapshot.
pub(crate) struct Responder<'a> {
    /// The generation answers come from, loaded once per query.
    pub snapshot: &'a Snapshot,
    /// The EDNS UDP payload we advertise and cap UDP answers at.
    pub edns_payload: u16,
    /// The secrets server cookies are made and checked with.
    pub cookies: &'a Cookies,
}

/// The OPT record of a response.
struct OptReply {
    payload: u16,
    extended_rcode: u8,
    /// The query's DO bit, copied back (RFC 3225 section 3).
    dnssec_ok: bool,
    subnet: Option<(ClientSubnet, u8)>,
    /// The COOKIE option's data: the client's cookie and ours.
    cookie: Option<[u8; REPLY_LEN]>,
}

/// Header fields of a response.
struct Header {
    id: u16,
    opcode: u8,
    authoritative: bool,
    recursion_desired: bool,
    checking_disabled: bool,
    rcode: u8,
}

impl Responder<'_> {
    /// Answers a well-formed query into `out`.
    pub(crate) fn answer(&self, q: &Query, client: Client, out: &mut Vec<u8>) -> Outcome {
        let mut header = Header {
            id: q.id,
            opcode: q.opcode,
            authoritative: false,
            recursion_desired: q.recursion_desired,
            checking_disabled: q.checking_disabled,
            rcode: 0,
        };
        // Only a query with a cookie pays for one.
        let cookie = q
            .edns
            .and_then(|e| e.cookie)
            .map(|c| self.cookies.reply(&c, client.ip));
        let mut opt = q.edns.map(|e| OptReply {
            payload: self.edns_payload,
            extended_rcode: 0,
            dnssec_ok: e.dnssec_ok,
            subnet: e.client_subnet.map(|s| (s, 0)),
            cookie: cookie.map(|c| c.data),
        });
        let limit = self.limit(q, client);
        let question = Some(q.question.as_slice());
        let outcome = |rcode: u16, truncated, warm| Outcome {
            rcode,
            qtype: q.qtype,
            truncated,
            warm,
            denied: false,
            question_len: q.question.as_slice().len(),
            cookie: cookie.map_or(CookieSeen::Absent, |c| c.seen),
            reusable: false,
        };
        // What a reply could owe to the client rather than to the query's bytes.
        let from_bytes_alone = q
            .edns
            .is_none_or(|e| e.cookie.is_none() && e.client_subnet.is_none());

        // Who may ask comes first: a refused client costs no answer work.
        if !self.snapshot.topology.allows_query(client.ip) {
            header.rcode = REFUSED;
            if let Some(o) = opt.as_mut() {
                o.subnet = None;
            }
            write(out, &header, question, None, limit, opt.as_ref());
            return Outcome {
                denied: true,
                ..outcome(u16::from(REFUSED), false, false)
            };
        }

        if let (Some(edns), Some(o)) = (q.edns, opt.as_mut())
            && edns.version > 0
        {
            o.extended_rcode = BADVERS_EXTENDED;
            o.subnet = None;
            o.cookie = None;
            write(out, &header, question, None, limit, Some(&*o));
            return outcome(BADVERS, false, false);
        }
        if q.qtype == TYPE_OPT {
            header.rcode = FORMERR;
            write(out, &header, question, None, limit, opt.as_ref());
            return outcome(u16::from(FORMERR), false, false);
        }
        if q.qclass != CLASS_IN {
            header.rcode = REFUSED;
            write(out, &header, question, None, limit, opt.as_ref());
            return outcome(u16::from(REFUSED), false, false);
        }

        let mut scope = None;
        let mut viewed = false;
        // DO picks the signed bodies (RFC 3225, RFC 4035 section 3.1): RRSIGs and NSEC records
        // only to those that ask for them.
        let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
        let lookup = self.snapshot.lookup(q.qname(), q.qtype, dnssec_ok, || {
            let (view, used_prefix) = self.view(q, client);
            scope = used_prefix;
            viewed = true;
            self.snapshot.topology.view_index(view)
        });
        if let (Some(scope), Some((_, s))) = (scope, opt.as_mut().and_then(|o| o.subnet.as_mut())) {
            *s = scope;
        }
        let picked = matches!(lookup, Lookup::Found { warm: Some(_), .. });
        let (answer, warm) = match lookup {
            Lookup::Found { answer, warm } => match warm {
                Some((warm, w)) if self.snapshot.warm.pick(w.site, w.share) => (warm, true),
                _ => (answer, false),
            },
            Lookup::NxDomain(answer) => (answer, false),
            Lookup::TransferRefused | Lookup::NotAuthoritative => {
                header.rcode = REFUSED;
                write(out, &header, question, None, limit, opt.as_ref());
                return Outcome {
                    reusable: from_bytes_alone,
                    ..outcome(u16::from(REFUSED), false, false)
                };
            }
        };
        header.authoritative = answer.authoritative;
        header.rcode = answer.rcode;
        let truncated = write(out, &header, question, Some(answer), limit, opt.as_ref());
        Outcome {
            reusable: from_bytes_alone && !viewed && !picked,
            ..outcome(u16::from(answer.rcode), truncated, warm)
        }
    }

    /// Answers a request the full parser rejected.
    pub(crate) fn error(&self, e: &ErrorReply, out: &mut Vec<u8>) -> Outcome {
        let header = Header {
            id: e.id,
            opcode: e.opcode,
            authoritative: false,
            recursion_desired: e.recursion_desired,
            checking_disabled: e.checking_disabled,
            rcode: e.rcode,
        };
        let opt = e.edns.map(|edns| OptReply {
            payload: self.edns_payload,
            extended_rcode: 0,
            dnssec_ok: edns.dnssec_ok,
            subnet: None,
            cookie: None,
        });
        let question = e.question.as_ref().map(|q| q.as_slice());
        write(out, &header, question, None, usize::MAX, opt.as_ref());
        let qtype = question.map_or(0, |q| u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]));
        Outcome {
            rcode: u16::from(e.rcode),
            qtype,
            truncated: false,
            warm: false,
            denied: false,
            question_len: question.map_or(0, <[u8]>::len),
            cookie: e.cookie,
            reusable: false,
        }
    }

    /// The largest response this client accepts over this transport.
    fn limit(&self, q: &Query, client: Client) -> usize {
        if client.tcp {
            return usize::from(u16::MAX);
        }
        match q.edns {
            None => PLAIN_UDP_LIMIT,
            Some(e) => usize::from(e.payload.min(self.edns_payload)).max(PLAIN_UDP_LIMIT),
        }
    }

    /// The view of a shared name for this client, and the ECS scope it was chosen at.
    fn view(&self, q: &Query, client: Client) -> (View, Option<u8>) {
        let topology = &self.snapshot.topology;
        let subnet = q
            .edns
            .and_then(|e| e.client_subnet)
            .filter(|_| topology.trusts_resolver(client.ip));
        match subnet {
            Some(s) => {
                let (view, scope) = topology.view_of_subnet(s.address, s.source_prefix);
                (view, Some(scope))
            }
            None => (topology.view_of(client.ip).0, None),
        }
    }
}

/// Writes a response; returns whether it was truncated.
fn write(
    out: &mut Vec<u8>,
    h: &Header,
    question: Option<&[u8]>,
    answer: Option<Answer<'_>>,
    limit: usize,
    opt: Option<&OptReply>,
) -> bool {
    let opt_len = opt.map_or(0, |o| {
        11 + o.subnet.map_or(0, |(s, _)| 8 + subnet_bytes(&s)) + o.cookie.map_or(0, |c| 4 + c.len())
    });
    let fixed = 12 + question.map_or(0, <[u8]>::len) + opt_len;
    // What does not fit drops the additional section (and its RRSIGs) first; only when the
    // answer and authority sections (with theirs) do not fit either is TC set (RFC 2181
    // section 9, RFC 4035 section 3.1.1).
    let (body, counts, truncated) = match answer {
        None => (None, [0, 0, 0], false),
        Some(a) if fixed + a.len() <= limit => (Some((a, true)), a.counts, false),
        Some(a) if fixed + a.essential_len() <= limit => {
            (Some((a, false)), [a.counts[0], a.counts[1], 0], false)
        }
        Some(_) => (None, [0, 0, 0], true),
    };
    out.clear();
    out.extend_from_slice(&h.id.to_be_bytes());
    out.push(
        0x80 | (h.opcode << 3)
            | if h.authoritative { 0x04 } else { 0 }
            | if truncated { 0x02 } else { 0 }
            | u8::from(h.recursion_desired),
    );
    out.push(if h.checking_disabled { 0x10 } else { 0 } | (h.rcode & 0x0F));
    let additionals = counts[2] + u16::from(opt.is_some());
    for c in [
        u16::from(question.is_some()),
        counts[0],
        counts[1],
        additionals,
    ] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    if let Some((answer, additional)) = body {
        answer.write_to(out, additional);
    }
    if let Some(o) = opt {
        out.extend_from_slice(&[0]);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&o.payload.to_be_bytes());
        let flags = if o.dnssec_ok { 0x80 } else { 0 };
        out.extend_from_slice(&[o.extended_rcode, 0, flags, 0]);
        let rdlen = (opt_len - 11) as u16;
        out.extend_from_slice(&rdlen.to_be_bytes());
        if let Some((s, scope)) = o.subnet {
            let n = subnet_bytes(&s);
            out.extend_from_slice(&OPTION_CLIENT_SUBNET.to_be_bytes());
            out.extend_from_slice(&((4 + n) as u16).to_be_bytes());
            let family: u16 = if s.address.is_ipv4() { 1 } else { 2 };
            out.extend_from_slice(&family.to_be_bytes());
            out.push(s.source_prefix);
            out.push(scope);
            match s.address {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
            }
        }
        if let Some(c) = &o.cookie {
            out.extend_from_slice(&OPTION_COOKIE.to_be_bytes());
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c);
        }
    }
    truncated
}

fn subnet_bytes(s: &ClientSubnet) -> usize {
    usize::from(s.source_prefix).div_ceil(8)
}
