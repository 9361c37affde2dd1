//! `smarthostd explain DOMAIN [--mta NAME]`: resolve a domain as an MTA does and print the
//! order in which it would try hosts, with the equal-preference groups it rotates through, and
//! where the MTA's own limits hide the fallback. Without `--mta`, an MX-first MTA (Postfix).
//!
//! When a blocklist listing shaped the answer, smarthostd says so in a TXT record at the same
//! name, built with the answer it explains; `explain` reads it and prints it as a note, so the
//! explanation comes over DNS like the answer itself, through any resolver.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::RData;

use super::error::CliError;
use super::mta::{Lookup, Mta, Profile};
use crate::answer::demotions::NOTE_PREFIX;
use crate::resolver::resolver_for;

/// Why [`explain`] could not say what an MTA would do.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No resolver could be made: the system's configuration could not be read.
    #[error("{0}")]
    NoResolver(String),
    /// The MX lookup failed other than with "no such records": an MTA would defer.
    #[error("MX lookup of {domain} failed: {reason}")]
    Lookup {
        /// The name looked up, fully qualified.
        domain: String,
        /// What the resolver said, made safe.
        reason: String,
    },
}

/// What an MTA would do with a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The name explained, fully qualified (with its trailing dot).
    pub domain: String,
    /// MX groups by ascending preference; empty when the domain has no MX.
    pub groups: Vec<Group>,
    /// With no MX, the addresses of the domain itself (RFC 5321 section 5.1).
    pub implicit: Vec<IpAddr>,
    /// What may go wrong: an exchange with no address, or an MTA limit that hides the fallback.
    pub warnings: Vec<String>,
    /// Why a blocklist listing moved relays in this answer (smarthostd's TXT note).
    pub notes: Vec<String>,
    /// The MTA asked about, if any.
    pub mta: Option<Mta>,
}

/// Exchanges of one preference: an MTA tries them in random order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub preference: u16,
    pub exchanges: Vec<(String, Vec<IpAddr>)>,
}

pub(super) fn run(
    domain: &str,
    server: Option<SocketAddr>,
    mta: Option<Mta>,
) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let explanation = runtime
        .block_on(explain(domain, server, mta))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    print!("{}", render(&explanation));
    Ok(())
}

/// Resolves `domain` against `server` (or the system resolver) as `mta` (default: an MX-first
/// MTA such as Postfix) would.
pub async fn explain(
    domain: &str,
    server: Option<SocketAddr>,
    mta: Option<Mta>,
) -> Result<Explanation, ExplainError> {
    let profile = mta.unwrap_or(Mta::Postfix).profile();
    let servers: Vec<SocketAddr> = server.into_iter().collect();
    let resolver = resolver_for(&servers).map_err(|e| ExplainError::NoResolver(e.to_string()))?;
    let fqdn = if domain.ends_with('.') {
        domain.to_string()
    } else {
        format!("{domain}.")
    };
    let mut explanation = Explanation {
        domain: fqdn.clone(),
        groups: Vec::new(),
        implicit: Vec::new(),
        warnings: Vec::new(),
        notes: listing_notes(&resolver, &fqdn).await,
        mta,
    };
    if profile.lookup == Lookup::AddressesOnly {
        explanation.implicit = addresses(&resolver, &fqdn).await;
        explanation.warnings = limit_warnings(&explanation, &profile);
        return Ok(explanation);
    }
    let mut by_pref: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => {
            for record in lookup.answers() {
                if let RData::MX(mx) = &record.data {
                    by_pref
                        .entry(mx.preference)
                        .or_default()
                        .push(mx.exchange.to_ascii());
                }
            }
        }
        Err(e) if e.is_no_records_found() => {}
        Err(e) => {
            return Err(ExplainError::Lookup {
                domain: fqdn,
                reason: crate::network_text::clean(&e.to_string(), 200),
            });
        }
    }
    if by_pref.is_empty() {
        explanation.implicit = addresses(&resolver, &fqdn).await;
        return Ok(explanation);
    }
    for (preference, names) in by_pref {
        let mut exchanges = Vec::new();
        for name in names {
            let addrs = addresses(&resolver, &name).await;
            if addrs.is_empty() {
                explanation
                    .warnings
                    .push(format!("{name} has no address: an MTA skips it"));
            }
            exchanges.push((name, addrs));
        }
        explanation.groups.push(Group {
            preference,
            exchanges,
        });
    }
    let limits = limit_warnings(&explanation, &profile);
    explanation.warnings.extend(limits);
    Ok(explanation)
}

/// Where the MTA's limit on addresses per delivery attempt hides part of the answer.
fn limit_warnings(e: &Explanation, profile: &Profile) -> Vec<String> {
    let Some((limit, setting)) = profile.limit else {
        return Vec::new();
    };
    if e.groups.is_empty() {
        let n = e.implicit.len();
        return (n > limit)
            .then(|| {
                format!(
                    "{n} addresses: {} tries at most {setting} = {limit} per attempt; the rest only on a later attempt",
                    profile.name
                )
            })
            .into_iter()
            .collect();
    }
    let first: usize = e.groups[0].exchanges.iter().map(|(_, a)| a.len()).sum();
    if e.groups.len() > 1 && first >= limit {
        vec![format!(
            "the first group has {first} addresses: {} tries at most {setting} = {limit} per attempt, \
             so while they are listed but unreachable it never reaches preference {} in that attempt",
            profile.name, e.groups[1].preference
        )]
    } else {
        Vec::new()
    }
}

/// smarthostd's note at `name` on the listings that shaped its answer; none from other servers.
async fn listing_notes(resolver: &hickory_resolver::TokioResolver, name: &str) -> Vec<String> {
    let Ok(lookup) = resolver.txt_lookup(name).await else {
        return Vec::new();
    };
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned()),
            ),
            _ => None,
        })
        .flatten()
        .filter_map(|s| s.strip_prefix(NOTE_PREFIX).map(str::to_string))
        .collect()
}

async fn addresses(resolver: &hickory_resolver::TokioResolver, name: &str) -> Vec<IpAddr> {
    match resolver.lookup_ip(name).await {
        Ok(lookup) => lookup.iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// The explanation as text for a terminal.
pub(super) fn render(e: &Explanation) -> String {
    let mut out = render_answer(e);
    for note in &e.notes {
        let _ = writeln!(
            out,
            "note: a blocklist listing shaped this answer: {}",
            super::terminal::printable(note)
        );
    }
    out
}

fn render_answer(e: &Explanation) -> String {
    let mut out = String::new();
    if let Some(mta) = e.mta {
        let p = mta.profile();
        let lookup = match p.lookup {
            Lookup::MxFirst => "MX records first, then each exchange's A/AAAA",
            Lookup::AddressesOnly => "only the name's own A/AAAA records (no MX)",
        };
        let _ = writeln!(
            out,
            "{}: selected by `{}`",
            p.name,
            p.setting_for(&e.domain)
        );
        let _ = writeln!(out, "  looks up {lookup}; tries {}", p.order);
        if let Some((limit, setting)) = p.limit {
            let _ = writeln!(
                out,
                "  at most {setting} = {limit} addresses per delivery attempt"
            );
        }
        let _ = writeln!(out, "  {}", p.note);
        if p.lookup == Lookup::AddressesOnly {
            let addrs: Vec<String> = e.implicit.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "{}: {}",
                e.domain,
                if addrs.is_empty() {
                    "no address (mail would defer)".to_string()
                } else {
                    format!(
                        "{} (smarthostd names the relays its MX answer leads with: the site's healthy relays, else the fallback's)",
                        addrs.join(", ")
                    )
                }
            );
            for w in &e.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            return out;
        }
    }
    if e.groups.is_empty() {
        let addrs: Vec<String> = e.implicit.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "{}: no MX records; an MTA delivers to the domain's own addresses: {}",
            e.domain,
            if addrs.is_empty() {
                "none (mail would bounce or defer)".to_string()
            } else {
                addrs.join(", ")
            }
        );
        return out;
    }
    let records: usize = e.groups.iter().map(|g| g.exchanges.len()).sum();
    let _ = writeln!(
        out,
        "{}: {records} MX records in {} preference groups, in the order an MTA tries them",
        e.domain,
        e.groups.len()
    );
    let mut n = 0;
    let mut address_n = 0;
    let limit = e.mta.unwrap_or(Mta::Postfix).profile().limit;
    for (i, g) in e.groups.iter().enumerate() {
        let how = if i == 0 {
            "tried first; equal preference, so the MTA rotates among them"
        } else {
            "tried only when every host above has failed; rotated among themselves"
        };
        let _ = writeln!(out, "  preference {} — {how}:", g.preference);
        for (name, addrs) in &g.exchanges {
            n += 1;
            let list: Vec<String> = addrs
                .iter()
                .map(|a| {
                    address_n += 1;
                    let mark = match limit {
                        Some((n, setting)) if address_n > n => format!(" (past {setting})"),
                        _ => String::new(),
                    };
                    format!("{a}{mark}")
                })
                .collect();
            let _ = writeln!(
                out,
                "    {n}. {name}  {}",
                if list.is_empty() {
                    "no address".into()
                } else {
                    list.join(", ")
                }
            );
        }
    }
    for w in &e.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
