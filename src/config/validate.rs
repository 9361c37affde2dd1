//! The checks serde cannot make: cross-references, uniqueness, ranges, name syntax. Each table
//! with checks of its own keeps them beside its keys (`sites`, `admin`, `reputation`, ...) as a
//! method of the [`Validator`] here.

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

    pub(super) fn label(&self, label: &str, at: KeyPath, what: &str) -> Result<(), ConfigError> {
        self.check(
            is_hostname_label(label),
            at,
            format!(
                "{what} \"{label}\" must be one DNS label: letters, digits and inner hyphens, at most 63"
            ),
        )
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
