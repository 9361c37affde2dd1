//! One blocklist lookup: the A record of the address's query name, and when it is a listing,
//! the TXT record that gives the list's reason.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolveHosts;
use hickory_resolver::net::{DnsError, NetError, NoRecords};

use super::query::{Meaning, describe_error, meaning, query_name};
use super::{List, Outcome};
use crate::network_text;
use crate::resolver::resolver_builder;

/// The longest reason kept from a list's TXT record (they hold a sentence and a URL).
const MAX_REASON: usize = 200;
/// The longest resolver error kept.
const ERROR_CHARS: usize = 200;

/// The resolver the lookups of one configuration share: `servers` (the system resolver when
/// empty), one attempt bounded by `timeout`, and no cache of its own, so that a delisting is
/// seen at the next check rather than when a cached listing expires.
pub(crate) fn resolver(servers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder = resolver_builder(servers).map_err(|e| e.to_string())?;
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    options.use_hosts_file = ResolveHosts::Never;
    builder.build().map_err(|e| e.to_string())
}

/// Looks `address` up on `list`, each query bounded by `timeout`.
pub(crate) async fn lookup(
    resolver: &TokioResolver,
    list: &List,
    address: IpAddr,
    timeout: Duration,
) -> Outcome {
    let name = match query_name(address, &list.zone) {
        Ok(name) => name,
        Err(e) => return Outcome::Error(format!("no query name: {e}")),
    };
    let answer =
        match tokio::time::timeout(timeout, resolver.lookup(name.clone(), RecordType::A)).await {
            Err(_) | Ok(Err(NetError::Timeout)) => return Outcome::Timeout,
            Ok(Err(e)) if not_listed(&e) => return Outcome::Clean,
            Ok(Err(e)) => return Outcome::Error(failure(&e)),
            Ok(Ok(answer)) => answer,
        };
    let codes: Vec<Ipv4Addr> = answer
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    if codes.is_empty() {
        return Outcome::Clean;
    }
    match meaning(&codes, &list.listed) {
        Meaning::Error(code) => Outcome::Error(describe_error(code)),
        Meaning::Listed(code) => Outcome::Listed {
            code,
            reason: reason(resolver, name, timeout).await,
        },
    }
}

/// NXDOMAIN, or NOERROR with no A record: the address is not on the list.
fn not_listed(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NXDomain | ResponseCode::NoError,
            ..
        }))
    )
}

/// A failure in words: the response code when the server gave one.
fn failure(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. }))
        | NetError::Dns(DnsError::ResponseCode(response_code)) => {
            let mnemonic = match response_code {
                ResponseCode::ServFail => "SERVFAIL",
                ResponseCode::Refused => "REFUSED",
                ResponseCode::FormErr => "FORMERR",
                ResponseCode::NotImp => "NOTIMP",
                other => other.to_str(),
            };
            format!("the resolver answered {mnemonic}")
        }
        // The resolver's words may quote what a name server sent.
        e => network_text::clean(&e.to_string(), ERROR_CHARS),
    }
}

/// The list's TXT record at the query name, if it gives one in time.
async fn reason(
    resolver: &TokioResolver,
    name: hickory_proto::rr::Name,
    timeout: Duration,
) -> Option<String> {
    let answer = tokio::time::timeout(timeout, resolver.lookup(name, RecordType::TXT))
        .await
        .ok()?
        .ok()?;
    let text: String = answer
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    // The list's words enter here: they go to a WARN line, the status, events and TXT notes.
    let text = network_text::clean(text.trim(), MAX_REASON);
    (!text.is_empty()).then_some(text)
}
