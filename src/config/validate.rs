//! The checks serde cannot make: cross-references, uniqueness, ranges, name syntax.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::locate::{KeyPath, span_of};
use super::{Config, ConfigError, VIEW_ALL};

/// The shortest probe interval: each probe is a whole SMTP session on the relay.
pub(super) const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest and longest probe step timeout.
pub(super) const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(10);
pub(super) const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest TTL: DNS counts whole seconds.
const MIN_TTL: Duration = Duration::from_secs(1);

/// Checks `config` (parsed from `text`) and returns the first problem found.
pub(super) fn validate(config: &Config, text: &str) -> Result<(), ConfigError> {
    let v = Validator {
        path: &config.path,
        text,
    };
    v.server(config)?;
    v.zone(config)?;
    v.probe(config)?;
    v.sites(config)?;
    v.views(config)?;
    v.reputation(config)?;
    v.cluster(config)?;
    v.dnssec(config)?;
    v.transfer(config)?;
    Ok(())
}

pub(super) struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

pub(super) fn root() -> KeyPath {
    KeyPath::default()
}

impl Validator<'_> {
    pub(super) fn error(&self, key: KeyPath, message: impl Into<String>) -> ConfigError {
        let e = ConfigError::new(self.path, key.to_string(), message);
        match span_of(self.text, &key) {
            Some(span) => e.at_offset(self.text, span.start),
            None => e,
        }
    }

    pub(super) fn check(
        &self,
        ok: bool,
        key: KeyPath,
        message: impl Into<String>,
    ) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(self.error(key, message))
        }
    }

    fn server(&self, config: &Config) -> Result<(), ConfigError> {
        let s = &config.server;
        let at = |k: &str| root().key("server").key(k);
        self.check(
            !s.listen.is_empty(),
            at("listen"),
            "needs at least one address",
        )?;
        let mut seen = HashSet::new();
        for (i, addr) in s.listen.iter().enumerate() {
            self.check(
                seen.insert(addr),
                at("listen").index(i),
                format!("{addr} is listed twice"),
            )?;
        }
        self.check(
            s.edns_udp_payload >= 512,
            at("edns_udp_payload"),
            "must be at least 512 (RFC 6891)",
        )?;
        self.check(
            s.tcp_max_connections >= 1,
            at("tcp_max_connections"),
            "must be at least 1",
        )?;
        self.check(
            s.admin_max_connections >= 1,
            at("admin_max_connections"),
            "must be at least 1",
        )?;
        self.check(
            s.tcp_idle_timeout >= Duration::from_millis(100),
            at("tcp_idle_timeout"),
            "must be at least 100ms",
        )?;
        self.admin(config)?;
        let rl = &s.rate_limit;
        let rl_at = |k: &str| at("rate_limit").key(k);
        self.check(
            rl.responses_per_second >= 1,
            rl_at("responses_per_second"),
            "must be at least 1",
        )?;
        self.check(
            rl.ipv4_prefix <= 32,
            rl_at("ipv4_prefix"),
            "must be 0 to 32",
        )?;
        self.check(
            rl.ipv6_prefix <= 128,
            rl_at("ipv6_prefix"),
            "must be 0 to 128",
        )?;
        if let Some(token) = &s.admin_token {
            self.check(
                !token.trim().is_empty(),
                at("admin_token"),
                "must not be empty",
            )?;
        }
        Ok(())
    }

    fn zone(&self, config: &Config) -> Result<(), ConfigError> {
        let z = &config.zone;
        let at = |k: &str| root().key("zone").key(k);
        match Name::from_ascii(&z.origin) {
            Ok(name) if !name.is_root() => {}
            Ok(_) => return Err(self.error(at("origin"), "must not be the root zone")),
            Err(e) => return Err(self.error(at("origin"), format!("not a domain name: {e}"))),
        }
        self.check(
            z.local_preference < z.fallback_preference,
            at("fallback_preference"),
            format!(
                "must be greater than local_preference ({}), or fallback hosts would share the local hosts' rank",
                z.local_preference
            ),
        )?;
        self.check(
            z.fallback_step >= 1,
            at("fallback_step"),
            "must be at least 1",
        )?;
        let max_ttl = u64::from(i32::MAX as u32);
        self.check(
            z.ttl.as_secs() <= max_ttl,
            at("ttl"),
            "must be under 68 years (RFC 2181)",
        )?;
        self.check(
            z.ttl >= MIN_TTL,
            at("ttl"),
            "must be at least 1s: DNS TTLs are whole seconds, and a TTL of 0 is not cached at all",
        )?;
        if let Some(degraded) = z.degraded_ttl {
            self.check(degraded <= z.ttl, at("degraded_ttl"), "must not exceed ttl")?;
            self.check(
                degraded >= MIN_TTL,
                at("degraded_ttl"),
                "must be at least 1s: DNS TTLs are whole seconds",
            )?;
        }
        Ok(())
    }

    fn probe(&self, config: &Config) -> Result<(), ConfigError> {
        let p = &config.probe;
        let at = |k: &str| root().key("probe").key(k);
        self.check(
            p.interval >= MIN_PROBE_INTERVAL,
            at("interval"),
            format!(
                "must be at least {}: each probe is a whole SMTP session on the relay",
                humantime::format_duration(MIN_PROBE_INTERVAL)
            ),
        )?;
        self.check(
            p.timeout >= MIN_PROBE_TIMEOUT && p.timeout <= MAX_PROBE_TIMEOUT,
            at("timeout"),
            format!(
                "must be {} to {}",
                humantime::format_duration(MIN_PROBE_TIMEOUT),
                humantime::format_duration(MAX_PROBE_TIMEOUT)
            ),
        )?;
        self.check(p.rise >= 1, at("rise"), "must be at least 1")?;
        self.check(p.fall >= 1, at("fall"), "must be at least 1")?;
        self.check(
            p.max_concurrent >= 1,
            at("max_concurrent"),
            "must be at least 1",
        )?;
        if let Some(source) = p.source_address {
            let usable = !source.is_unspecified() && !source.is_multicast();
            self.check(
                usable,
                at("source_address"),
                "must be one of this machine's addresses",
            )?;
            // A source the system cannot bind would fail every probe: every site in failsafe.
            if let Err(e) = std::net::UdpSocket::bind((source, 0)) {
                return Err(self.error(
                    at("source_address"),
                    format!("{source} is not an address of this machine: {e}"),
                ));
            }
        }
        if let Some(ehlo) = &p.ehlo {
            self.check(
                Name::from_ascii(ehlo).is_ok() && !ehlo.is_empty(),
                at("ehlo"),
                "not a host name",
            )?;
        }
        Ok(())
    }

    fn sites(&self, config: &Config) -> Result<(), ConfigError> {
        self.check(
            !config.sites.is_empty(),
            root().key("sites"),
            "needs at least one site",
        )?;
        let mut site_names = HashSet::new();
        for (site_name, site) in &config.sites {
            let at = root().key("sites").key(site_name);
            self.label(site_name, at.clone(), "site name")?;
            self.check(
                site_names.insert(site_name.to_ascii_lowercase()),
                at.clone(),
                "another site has the same name in other letter case",
            )?;
            self.check(
                !site.hosts.is_empty(),
                at.clone().key("hosts"),
                "needs at least one host",
            )?;
            let mut host_names = HashSet::new();
            for (i, host) in site.hosts.iter().enumerate() {
                let host_at = at.clone().key("hosts").index(i);
                self.label(&host.name, host_at.clone().key("name"), "host name")?;
                self.check(
                    host_names.insert(host.name.to_ascii_lowercase()),
                    host_at.clone().key("name"),
                    format!("duplicate host \"{}\" in site \"{site_name}\"", host.name),
                )?;
                match (&host.fqdn, host.addresses.is_empty()) {
                    (None, true) => {
                        return Err(self.error(host_at, "needs `addresses` or `fqdn`"));
                    }
                    (Some(_), false) => {
                        return Err(self.error(
                            host_at.key("fqdn"),
                            "give either `addresses` or `fqdn`, not both",
                        ));
                    }
                    (Some(fqdn), true) => {
                        self.check(
                            fqdn.parse::<std::net::IpAddr>().is_err(),
                            host_at.clone().key("fqdn"),
                            format!("{fqdn} is an IP address, which never resolves: give it in `addresses`"),
                        )?;
                        self.check(
                            Name::from_ascii(fqdn).is_ok_and(|n| n.num_labels() >= 1),
                            host_at.clone().key("fqdn"),
                            "not a domain name",
                        )?;
                    }
                    (None, false) => {}
                }
                let mut addresses = HashSet::new();
                for (j, addr) in host.addresses.iter().enumerate() {
                    let here = host_at.clone().key("addresses").index(j);
                    self.check(
                        addresses.insert(addr.ip),
                        here.clone(),
                        format!("{} is listed twice", addr.ip),
                    )?;
                    self.check(
                        !addr.ip.is_unspecified() && !addr.ip.is_multicast(),
                        here.clone(),
                        format!("{addr} cannot be a relay's address"),
                    )?;
                    let link_local =
                        matches!(addr.ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
                    match (&addr.interface, link_local) {
                        (None, true) => {
                            return Err(self.error(
                                here,
                                format!(
                                    "{addr} is link-local: name its interface, e.g. \"{addr}%eth0\""
                                ),
                            ));
                        }
                        (Some(_), false) => {
                            return Err(self.error(
                                here,
                                format!("{addr}: only a link-local address (fe80::/10) takes an %interface"),
                            ));
                        }
                        (Some(interface), true) => self.check(
                            super::interface_index(interface) != 0,
                            here,
                            format!("{addr}: this machine has no interface {interface}"),
                        )?,
                        (None, false) => {}
                    }
                }
                if let Some(name) = &host.tls_name {
                    self.check(
                        rustls_pki_types::ServerName::try_from(name.as_str()).is_ok()
                            && name.parse::<std::net::IpAddr>().is_err()
                            && Name::from_ascii(name).is_ok(),
                        host_at.clone().key("tls_name"),
                        "not a host name",
                    )?;
                }
                if let Some(port) = host.port {
                    self.check(port != 0, host_at.clone().key("port"), "must be 1 to 65535")?;
                }
                if let Some(t) = host.timeout {
                    self.check(
                        (MIN_PROBE_TIMEOUT..=MAX_PROBE_TIMEOUT).contains(&t),
                        host_at.key("timeout"),
                        format!(
                            "must be {} to {}",
                            humantime::format_duration(MIN_PROBE_TIMEOUT),
                            humantime::format_duration(MAX_PROBE_TIMEOUT)
                        ),
                    )?;
                }
            }
            self.fallback(config, site_name)?;
            self.check(
                (0.0..=0.5).contains(&site.warm_share),
                at.clone().key("warm_share"),
                format!("{} is out of range 0.0 to 0.5", site.warm_share),
            )?;
            if site.warm_share > 0.0 {
                self.check(
                    first_fallback(config, site_name).is_some(),
                    at.key("warm_share"),
                    "needs a fallback site to keep warm",
                )?;
            }
        }
        Ok(())
    }

    fn fallback(&self, config: &Config, site_name: &str) -> Result<(), ConfigError> {
        let Some(fallback) = &config.sites[site_name].fallback else {
            return Ok(());
        };
        let at = root().key("sites").key(site_name).key("fallback");
        let zone = &config.zone;
        let last = u32::from(zone.fallback_preference)
            + u32::from(zone.fallback_step) * (fallback.len().saturating_sub(1) as u32);
        self.check(
            last <= u32::from(u16::MAX),
            at.clone(),
            "too many fallback sites for the preference range",
        )?;
        let mut seen = HashSet::new();
        for (i, other) in fallback.iter().enumerate() {
            let known: Vec<&str> = config.sites.keys().map(String::as_str).collect();
            self.check(
                config.sites.contains_key(other.as_str()),
                at.clone().index(i),
                format!("unknown site \"{other}\" (sites are: {})", known.join(", ")),
            )?;
            self.check(
                other != site_name,
                at.clone().index(i),
                "a site cannot be its own fallback",
            )?;
            self.check(
                seen.insert(other),
                at.clone().index(i),
                format!("\"{other}\" is listed twice"),
            )?;
        }
        Ok(())
    }

    fn views(&self, config: &Config) -> Result<(), ConfigError> {
        let at = |k: &str| root().key("views").key(k);
        if let Some(default) = &config.views.default {
            self.check(
                default == VIEW_ALL || config.sites.contains_key(default.as_str()),
                at("default"),
                format!("unknown site \"{default}\" (a site name, or \"{VIEW_ALL}\")"),
            )?;
        }
        let origin = crate::wire::fqdn(&config.zone.origin).ok();
        for (i, name) in config.views.names.iter().enumerate() {
            let here = at("names").index(i);
            let relative = name.trim_end_matches('.').to_ascii_lowercase();
            let origin_text = config
                .zone
                .origin
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let site_name = relative
                .strip_suffix(&format!(".{origin_text}"))
                .unwrap_or(&relative);
            let synthesized = config.sites.iter().find_map(|(site, s)| {
                let site_lower = site.to_ascii_lowercase();
                if site_name == site_lower {
                    return Some(format!("site {site}'s own name"));
                }
                s.hosts.iter().find_map(|h| {
                    (site_name == format!("{}.{site_lower}", h.name.to_ascii_lowercase()))
                        .then(|| format!("host {site}/{}'s name", h.name))
                })
            });
            if let Some(what) = synthesized {
                return Err(self.error(
                    here,
                    format!("{name} is {what}, which answers for that site alone: a shared name must be another name"),
                ));
            }
            match (crate::wire::fqdn(name), &origin) {
                (Err(_), _) => return Err(self.error(here, "not a domain name")),
                (Ok(n), Some(origin)) if name.ends_with('.') => self.check(
                    origin.zone_of(&n) && &n != origin,
                    here,
                    format!("{n} is not a name under the zone {origin}"),
                )?,
                _ => {}
            }
        }
        // Equal prefixes in two sites would make the view depend on file order.
        let mut seen: Vec<(ipnet::IpNet, &str)> = Vec::new();
        for (site_name, site) in &config.sites {
            for (i, net) in site.clients.iter().enumerate() {
                let here = root().key("sites").key(site_name).key("clients").index(i);
                for (other, other_site) in &seen {
                    let overlap = other.prefix_len() == net.prefix_len()
                        && (other.contains(&net.network()) || net.contains(&other.network()));
                    self.check(
                        !overlap || *other_site == site_name,
                        here.clone(),
                        format!("{net} overlaps {other} of site \"{other_site}\" at the same prefix length"),
                    )?;
                }
                seen.push((net.trunc(), site_name));
            }
        }
        Ok(())
    }

    fn label(&self, label: &str, at: KeyPath, what: &str) -> Result<(), ConfigError> {
        self.check(
            is_hostname_label(label),
            at,
            format!(
                "{what} \"{label}\" must be one DNS label: letters, digits and inner hyphens, at most 63"
            ),
        )
    }
}

/// The first fallback site of `site_name`: its first `fallback` entry, or with no list, the
/// first other site in file order.
pub(super) fn first_fallback<'c>(config: &'c Config, site_name: &str) -> Option<&'c str> {
    match &config.sites[site_name].fallback {
        Some(list) => list.first().map(String::as_str),
        None => config
            .sites
            .keys()
            .map(String::as_str)
            .find(|s| *s != site_name),
    }
}

/// True for an LDH label (RFC 952/1123), which is what a host name in a zone must be.
pub(super) fn is_hostname_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::is_hostname_label;

    #[test]
    fn labels_follow_ldh_rules() {
        assert!(is_hostname_label("mail1"));
        assert!(is_hostname_label("a-b"));
        assert!(!is_hostname_label("-a"));
        assert!(!is_hostname_label("a.b"));
        assert!(!is_hostname_label(""));
        assert!(!is_hostname_label(&"a".repeat(64)));
    }
}
