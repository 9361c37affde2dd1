//! Checks a response as a validator would, against the zone's keys, without a network: every
//! RRset signed by a key of the zone and verified (hickory-proto's verifier rebuilds the signed
//! data from the decoded records), signatures valid at a given time, and the NSEC proof of a
//! negative answer complete (RFC 4035 section 5.4).
//!
//! Used by the tests of signed answers (unit, integration, and against real key tools) so that
//! they all check the same things; validators in `tests/e2e` check the same answers again.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, RRSIG};
use hickory_proto::dnssec::{PublicKey, Verifier};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::canonical::canonical_cmp;
use crate::wire::wire_name;

/// What a response was proved to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proved {
    /// Records, every RRset signed.
    Answer,
    /// The name exists without the type asked for: its own NSEC lacks the type.
    NoData,
    /// The name exists only as an empty non-terminal: an NSEC spans it with a name under it next.
    EmptyNonTerminal,
    /// No such name: an NSEC covers it, and one covers the wildcard at its closest encloser.
    NxDomain,
}

/// Checks every RRset of `m` and its denial proof; `now` in seconds since the epoch.
pub fn check(m: &Message, zone: &Name, keys: &[DNSKEY], now: u32) -> Result<Proved, String> {
    for (section, records) in [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ] {
        check_section(section, records, zone, keys, now)?;
    }
    let query = m.queries.first().ok_or("no question")?;
    let qname = query.name().to_lowercase();
    let nsecs: Vec<(Name, &NSEC)> = m
        .authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => Some((r.name.to_lowercase(), n)),
            _ => None,
        })
        .collect();
    match m.metadata.response_code {
        ResponseCode::NXDomain => {
            let (owner, nsec) = nsecs
                .iter()
                .find(|(o, n)| covers(o, n, &qname))
                .ok_or_else(|| format!("no NSEC covers {qname}"))?;
            let encloser =
                common(&qname, owner).max_by_labels(common(&qname, nsec.next_domain_name()));
            let wildcard = encloser.prepend_label("*").map_err(|e| e.to_string())?;
            nsecs
                .iter()
                .find(|(o, n)| covers(o, n, &wildcard))
                .ok_or_else(|| format!("no NSEC covers the wildcard {wildcard}"))?;
            Ok(Proved::NxDomain)
        }
        ResponseCode::NoError if m.answers.is_empty() => {
            if let Some((_, nsec)) = nsecs.iter().find(|(o, _)| *o == qname) {
                let types: Vec<RecordType> = nsec.type_bit_maps().collect();
                if types.contains(&query.query_type()) || types.contains(&RecordType::CNAME) {
                    return Err(format!("the NSEC of {qname} lists {}", query.query_type()));
                }
                return Ok(Proved::NoData);
            }
            nsecs
                .iter()
                .find(|(o, n)| {
                    covers(o, n, &qname) && qname.zone_of(&n.next_domain_name().to_lowercase())
                })
                .map(|_| Proved::EmptyNonTerminal)
                .ok_or_else(|| format!("no NSEC proves {qname} has no {}", query.query_type()))
        }
        ResponseCode::NoError => Ok(Proved::Answer),
        other => Err(format!("response code {other}")),
    }
}

fn check_section(
    section: &str,
    records: &[Record],
    zone: &Name,
    keys: &[DNSKEY],
    now: u32,
) -> Result<(), String> {
    let mut rrsets: Vec<(Name, RecordType)> = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
    {
        let key = (r.name.to_lowercase(), r.record_type());
        if !rrsets.contains(&key) {
            rrsets.push(key);
        }
    }
    for (name, rtype) in rrsets {
        let members: Vec<Record> = records
            .iter()
            .filter(|r| r.name.to_lowercase() == name && r.record_type() == rtype)
            .cloned()
            .collect();
        let sigs: Vec<(&Record, &RRSIG)> = records
            .iter()
            .filter(|r| r.name.to_lowercase() == name)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => {
                    Some((r, s))
                }
                _ => None,
            })
            .collect();
        if sigs.is_empty() {
            return Err(format!("{section}: {name} {rtype} has no RRSIG"));
        }
        for (record, sig) in sigs {
            let input = sig.input();
            let at = |m: &str| {
                format!(
                    "{section}: {name} {rtype} RRSIG (key {}): {m}",
                    input.key_tag
                )
            };
            if input.signer_name != *zone {
                return Err(at("the signer is not the zone"));
            }
            if input.num_labels != name.num_labels() {
                return Err(at("its label count is not the owner's"));
            }
            if record.ttl != members[0].ttl || input.original_ttl < members[0].ttl {
                return Err(at("its TTL does not match the RRset's"));
            }
            if input.sig_inception.get() > now || input.sig_expiration.get() < now {
                return Err(at("not valid now"));
            }
            let key = keys
                .iter()
                .find(|k| {
                    k.calculate_key_tag().ok() == Some(input.key_tag)
                        && k.public_key().algorithm() == input.algorithm
                })
                .ok_or_else(|| at("no DNSKEY with its tag"))?;
            key.verify_rrsig(&name, DNSClass::IN, sig, members.iter())
                .map_err(|e| at(&format!("does not verify: {e}")))?;
        }
    }
    Ok(())
}

/// Whether the NSEC at `owner` spans `name`: owner < name < next, or past the last name.
fn covers(owner: &Name, nsec: &NSEC, name: &Name) -> bool {
    let (o, n, x) = (
        wire_name(owner),
        wire_name(nsec.next_domain_name()),
        wire_name(name),
    );
    let after_owner = canonical_cmp(&o, &x).is_lt();
    let before_next = canonical_cmp(&x, &n).is_lt();
    if canonical_cmp(&o, &n).is_lt() {
        after_owner && before_next
    } else {
        after_owner || before_next
    }
}

/// The longest common ancestor of two names.
fn common(a: &Name, b: &Name) -> Name {
    let b = b.to_lowercase();
    let mut n = a.num_labels();
    loop {
        let candidate = a.trim_to(usize::from(n));
        if candidate.zone_of(&b) || n == 0 {
            return candidate;
        }
        n -= 1;
    }
}

trait ByLabels {
    fn max_by_labels(self, other: Self) -> Self;
}

impl ByLabels for Name {
    fn max_by_labels(self, other: Self) -> Self {
        if other.num_labels() > self.num_labels() {
            other
        } else {
            self
        }
    }
}
