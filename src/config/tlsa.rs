//! The relays' pinned keys: `tlsa = ["3 1 1 <hex>", ...]` and `tls_key = "relay.pem"` per host
//! (each record is checked as it is read, in [`dane::record`](crate::dane::record)); the key
//! files, read with the config and on every reload; and what `check-config` says of where the
//! records can be published.

use super::locate::span_of;
use super::validate::root;
use super::{Config, ConfigError, HostConfig};
use crate::dane::{SMTP_PREFIX, Tlsa, read_key_file};

impl Config {
    /// Whether answers are signed (`[dnssec]`): TLSA records are worth publishing only then,
    /// since a DANE sender uses only records from validated answers (RFC 7672 section 2.2).
    pub fn dnssec_enabled(&self) -> bool {
        self.dnssec.is_some()
    }
}

impl HostConfig {
    /// Whether the host is pinned: it has `tlsa` records or a `tls_key`.
    pub fn has_tlsa(&self) -> bool {
        !self.tlsa.is_empty() || self.tls_key.is_some()
    }
}

/// Every host's TLSA records, in config order (site by site, as the topology numbers hosts):
/// its `tlsa`, then the `3 1 1` record of its `tls_key`, read now; each record once. An
/// unreadable or damaged key file is an error naming the config file, the key's line, and the
/// key file.
pub(crate) fn resolve(config: &Config, text: &str) -> Result<Vec<Vec<Tlsa>>, ConfigError> {
    let mut all = Vec::new();
    for (site_name, site) in &config.sites {
        for (i, host) in site.hosts.iter().enumerate() {
            let mut records = host.tlsa.clone();
            if let Some(file) = &host.tls_key {
                let path = super::beside(&config.path, file);
                let record = read_key_file(&path).map_err(|e| {
                    let key = root()
                        .key("sites")
                        .key(site_name)
                        .key("hosts")
                        .index(i)
                        .key("tls_key");
                    let error = ConfigError::new(&config.path, key.to_string(), e.to_string());
                    match span_of(text, &key) {
                        Some(span) => error.at_offset(text, span.start),
                        None => error,
                    }
                })?;
                records.push(record);
            }
            let mut seen = Vec::with_capacity(records.len());
            records.retain(|r| {
                let new = !seen.contains(r);
                seen.push(r.clone());
                new
            });
            all.push(records);
        }
    }
    Ok(all)
}

/// What an operator should know about the pinned hosts of a valid config: that the records
/// are not published without `[dnssec]`, that a `starttls = false` gives way, and where the
/// records of a relay named outside the zone must also be published.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let origin = config
        .zone
        .origin
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut pinned = Vec::new();
    for (site_name, site) in &config.sites {
        for (i, host) in site.hosts.iter().enumerate() {
            if !host.has_tlsa() {
                continue;
            }
            let at = format!("sites.{site_name}.hosts[{i}]");
            let in_zone = format!(
                "{}.{}.{origin}",
                host.name.to_ascii_lowercase(),
                site_name.to_ascii_lowercase()
            );
            pinned.push(format!("{site_name}/{}", host.name));
            if host.starttls == Some(false) {
                out.push(format!(
                    "{at}.starttls = false gives way to its TLSA records: the host is probed with STARTTLS, which a DANE sender requires"
                ));
            }
            if let Some(fqdn) = &host.fqdn {
                let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
                if fqdn != origin && !fqdn.ends_with(&format!(".{origin}")) {
                    out.push(format!(
                        "{at}: {} is named by fqdn {fqdn}, outside the zone: its TLSA records belong at {SMTP_PREFIX}.{in_zone}. (the MX exchange senders reach through this zone, served here once answers are signed), and a sender that names {fqdn} itself looks them up at {SMTP_PREFIX}.{fqdn}., which only the zone of {fqdn} can publish, signed",
                        host.name
                    ));
                }
            }
        }
    }
    if !pinned.is_empty() && !config.dnssec_enabled() {
        out.push(format!(
            "{} {} TLSA records but answers are not signed (no [dnssec]): the records are checked by the probes and not published, and a DANE sender uses only TLSA records from signed answers",
            pinned.join(", "),
            if pinned.len() == 1 { "has" } else { "have" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::config_from;

    const DIGEST: &str = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

    fn config(host: &str) -> Config {
        config_from(&format!(
            "[zone]\norigin = \"smarthost.internal\"\nfile = \"z\"\n[sites.oxford]\nhosts = [{host}]\n"
        ))
    }

    #[test]
    fn records_parse_into_the_host_and_warn_that_they_are_not_published() {
        let c = config(&format!(
            "{{ name = \"mail1\", addresses = [\"192.0.2.1\"], tlsa = [\"3 1 1 {DIGEST}\", \"3 1 1 {DIGEST}\"] }}"
        ));
        let host = &c.sites["oxford"].hosts[0];
        assert_eq!(host.tlsa.len(), 2);
        let records = resolve(&c, "").unwrap();
        assert_eq!(
            records,
            vec![vec![host.tlsa[0].clone()]],
            "each record once"
        );
        let w = warnings(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "oxford/mail1 has TLSA records but answers are not signed (no [dnssec])"
            ),
            "{}",
            w[0]
        );
    }

    #[test]
    fn a_relay_named_outside_the_zone_is_told_where_its_records_belong() {
        let c = config(&format!(
            "{{ name = \"isp1\", fqdn = \"Relay1.ISP.example.\", starttls = false, tlsa = [\"3 1 1 {DIGEST}\"] }}"
        ));
        let w = warnings(&c).join("\n");
        assert!(
            w.contains("_25._tcp.isp1.oxford.smarthost.internal.")
                && w.contains("_25._tcp.relay1.isp.example., which only the zone of relay1.isp.example can publish"),
            "{w}"
        );
        assert!(w.contains("starttls = false gives way"), "{w}");
        let inside = config(&format!(
            "{{ name = \"mail1\", fqdn = \"relay.smarthost.internal\", tlsa = [\"3 1 1 {DIGEST}\"] }}"
        ));
        assert!(!warnings(&inside).join("\n").contains("outside the zone"));
        let unpinned = config("{ name = \"mail1\", fqdn = \"relay.isp.example\" }");
        assert!(warnings(&unpinned).is_empty());
    }
}
