//! `smarthostd tlsa HOST[:PORT]`: the `3 1 1` record of the key a relay presents over
//! STARTTLS, ready to pin, with the warning that goes with it: what the network shows is what
//! the network shows at that moment.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::error::CliError;
use crate::dane::{Tlsa, spki_of};
use crate::probe::shown::shown;

/// Addresses of a name tried at most: a relay pool has a few, not dozens.
const MAX_ADDRESSES: usize = 8;

/// The command to check the record on the relay itself.
const ON_THE_RELAY: &str =
    "openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum";

/// `HOST[:PORT]` as given: a name or an address, and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    host: String,
    ip: Option<IpAddr>,
    port: u16,
}

/// Reads `relay.example.org`, `relay.example.org:2525`, `192.0.2.7`, `192.0.2.7:25`,
/// `2001:db8::7` and `[2001:db8::7]:25`; the port defaults to 25.
pub(super) fn parse_target(text: &str) -> Result<Target, String> {
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{text}: \"{p}\" is not a port (1 to 65535)"))
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Target {
            host: ip.to_string(),
            ip: Some(ip),
            port: crate::config::DEFAULT_SMTP_PORT,
        });
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text}: a [ without its ]"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => crate::config::DEFAULT_SMTP_PORT,
            None => return Err(format!("{text}: write [ADDRESS]:PORT")),
        };
        (inside.to_string(), port)
    } else {
        match text.rsplit_once(':') {
            Some((host, p)) => (host.to_string(), port_of(p)?),
            None => (text.to_string(), crate::config::DEFAULT_SMTP_PORT),
        }
    };
    let ip = host.parse::<IpAddr>().ok();
    let is_name = crate::wire::fqdn(&host).is_ok()
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ip.is_none() && !is_name {
        return Err(format!(
            "{text}: \"{host}\" is neither a host name nor an address"
        ));
    }
    Ok(Target { host, ip, port })
}

pub(super) fn run(target: &str, step: Duration, ehlo: Option<String>) -> Result<(), CliError> {
    let target = parse_target(target).map_err(CliError::Usage)?;
    if !(Duration::from_millis(10)..=Duration::from_secs(300)).contains(&step) {
        return Err(CliError::Usage("--timeout must be 10ms to 5m".into()));
    }
    let ehlo = ehlo.unwrap_or_else(crate::loaded::local_host_name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(runtime.block_on(show(&target, step, &ehlo))?)
}

async fn show(target: &Target, step: Duration, ehlo: &str) -> Result<(), String> {
    let addresses = addresses(target, step).await?;
    let sni = match target.ip {
        Some(_) => None,
        None => ServerName::try_from(target.host.trim_end_matches('.').to_string()).ok(),
    };
    let mut records: Vec<Tlsa> = Vec::new();
    let mut failed = Vec::new();
    for addr in &addresses {
        match shown(*addr, ehlo, step, sni.clone()).await {
            Ok(seen) => {
                let record = seen
                    .chain
                    .first()
                    .ok_or_else(|| "the relay presented no certificate".to_string())
                    .and_then(|c| {
                        spki_of(c).map_err(|e| format!("its certificate cannot be read: {e:?}"))
                    })
                    .map(|spki| Tlsa::dane_ee_spki_sha256(&spki));
                match record {
                    Ok(record) => {
                        let version = seen.version.unwrap_or_default();
                        println!("{} [{addr}], {version}:\n  {record}", target.host);
                        if !records.contains(&record) {
                            records.push(record);
                        }
                    }
                    Err(e) => failed.push(format!("{addr}: {e}")),
                }
            }
            Err(e) => failed.push(format!("{addr}: {e}")),
        }
    }
    if !records.is_empty() {
        print_records(target, &records);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of the {} addresses of {} showed no key: {}",
            failed.len(),
            addresses.len(),
            target.host,
            failed.join("; ")
        ))
    }
}

/// The addresses to connect to: the given one, or the name's (system resolver), bounded.
async fn addresses(target: &Target, step: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Some(ip) = target.ip {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let found = match tokio::time::timeout(step, lookup).await {
        Err(_) => {
            return Err(format!(
                "{}: no answer from the system resolver within {}",
                target.host,
                humantime::format_duration(step)
            ));
        }
        Ok(Err(e)) => return Err(format!("{}: cannot resolve it: {e}", target.host)),
        Ok(Ok(found)) => found,
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if !out.contains(&addr) && out.len() < MAX_ADDRESSES {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(format!("{}: the name has no address", target.host));
    }
    Ok(out)
}

fn print_records(target: &Target, records: &[Tlsa]) {
    let quoted: Vec<String> = records.iter().map(|r| format!("\"{r}\"")).collect();
    println!(
        "\nto pin it in smarthostd's config (the relay's entry in sites.<site>.hosts):\n  tlsa = [{}]",
        quoted.join(", ")
    );
    let owner = match target.ip {
        Some(_) => format!("_{}._tcp.<the relay's name>.", target.port),
        None => format!(
            "_{}._tcp.{}.",
            target.port,
            target.host.trim_end_matches('.')
        ),
    };
    println!("as a zone record, for senders that look the relay up by that name:");
    for record in records {
        println!("  {owner} IN TLSA {record}");
    }
    if records.len() > 1 {
        println!(
            "\nwarning: the addresses of {} present different keys: pin each relay under its own entry",
            target.host
        );
    }
    println!(
        "\nwarning: this is the key the network showed just now, and pinning it trusts the network at this moment (anyone between here and the relay could have shown their own). Check it against the relay's own key, on the relay:\n  {ON_THE_RELAY}\nor give smarthostd the relay's certificate file itself: tls_key = \"cert.pem\""
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_read_in_every_form() {
        let t = |text: &str| parse_target(text).map(|t| (t.host, t.ip.is_some(), t.port));
        assert_eq!(
            t("relay.example.org"),
            Ok(("relay.example.org".into(), false, 25))
        );
        assert_eq!(
            t("relay.example.org:2525"),
            Ok(("relay.example.org".into(), false, 2525))
        );
        assert_eq!(t("192.0.2.7"), Ok(("192.0.2.7".into(), true, 25)));
        assert_eq!(t("192.0.2.7:587"), Ok(("192.0.2.7".into(), true, 587)));
        assert_eq!(t("2001:db8::7"), Ok(("2001:db8::7".into(), true, 25)));
        assert_eq!(t("[2001:db8::7]:26"), Ok(("2001:db8::7".into(), true, 26)));
        assert_eq!(t("[2001:db8::7]"), Ok(("2001:db8::7".into(), true, 25)));
        assert!(t("relay:0").unwrap_err().contains("is not a port"));
        assert!(t("relay:smtp").unwrap_err().contains("is not a port"));
        assert!(t("[2001:db8::7").unwrap_err().contains("without its ]"));
        assert!(
            t("bad name!")
                .unwrap_err()
                .contains("neither a host name nor an address")
        );
    }
}
