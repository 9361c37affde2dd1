//! Helpers for unit tests: configs from text, without files.

use std::path::Path;

use crate::config::{self, Config};
use crate::topology::Topology;

/// Three sites on loopback relays (Oxford's `mail2` with an IPv6 address too), each answered
/// with every other site behind it: what the answer plans are tested on.
pub(crate) const THREE_SITES: &str = r#"
    [zone]
    origin = "smarthost.internal"
    file = "z.zone"
    [sites.oxford]
    hosts = [ { name = "mail1", addresses = ["127.0.1.11"] },
              { name = "mail2", addresses = ["127.0.1.12", "::1"] } ]
    [sites.cambridge]
    hosts = [ { name = "mail1", addresses = ["127.0.1.21"] } ]
    [sites.london]
    hosts = [ { name = "mail1", addresses = ["127.0.1.31"] } ]
"#;

/// A plan's exchanges as (preference, `site/host`), in order.
pub(crate) fn prefs(plan: &crate::answer::MxPlan, topo: &Topology) -> Vec<(u16, String)> {
    plan.exchanges
        .iter()
        .map(|e| (e.preference, topo.hosts[e.host].key(topo)))
        .collect()
}

/// One expected exchange, as [`prefs`] lists them.
pub(crate) fn p(pref: u16, key: &str) -> (u16, String) {
    (pref, key.to_string())
}

/// Parses and validates config `text` as if read from `test.toml`.
pub(crate) fn config_from(text: &str) -> Config {
    config::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The topology of `config`.
pub(crate) fn topology(config: &Config) -> Topology {
    Topology::from_config(config).expect("valid names")
}

/// The answers of `config` (text) with `zone` as its zone file, every host up.
pub(crate) fn snapshot(config: &str, zone: &str) -> crate::answer::Snapshot {
    let config = config_from(config);
    let topology = std::sync::Arc::new(topology(&config));
    let zone =
        crate::zone::StaticZone::parse(Path::new("test.zone"), zone.to_string(), &topology.origin)
            .unwrap_or_else(|e| panic!("{e}"));
    let health = std::sync::Arc::new(crate::answer::HealthView::all_up(&topology));
    crate::answer::build(topology, &zone, health, &Default::default(), 7, 1, None)
        .expect("answers fit")
}

/// The parts of a signed build in tests: topology, zone, keys (made by our keygen in a folder
/// of their own) and the signature cache builds share.
pub(crate) struct SignedZone {
    pub(crate) topology: std::sync::Arc<Topology>,
    pub(crate) zone: crate::zone::StaticZone,
    pub(crate) keys: crate::dnssec::ZoneKeys,
    pub(crate) cache: crate::dnssec::SignatureCache,
    _dir: tempfile::TempDir,
}

impl SignedZone {
    /// `config` (text) with `zone` as its zone file and one new key of `algorithm`, made at
    /// `made` (seconds since the epoch).
    pub(crate) fn new(
        config: &str,
        zone: &str,
        algorithm: crate::config::KeyAlgorithm,
        made: u64,
    ) -> Self {
        let config = config_from(config);
        let topology = std::sync::Arc::new(topology(&config));
        let zone = crate::zone::StaticZone::parse(
            Path::new("test.zone"),
            zone.to_string(),
            &topology.origin,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        crate::dnssec::keygen::generate(dir.path(), &topology.origin, algorithm, made).unwrap();
        let keys = crate::dnssec::ZoneKeys {
            keys: crate::dnssec::KeySet::load(dir.path(), &topology.origin).unwrap(),
            lifetime: crate::dnssec::Lifetime {
                validity: 14 * 86400,
                refresh: 7 * 86400,
            },
            dir: dir.path().to_path_buf(),
        };
        Self {
            topology,
            zone,
            keys,
            cache: crate::dnssec::SignatureCache::default(),
            _dir: dir,
        }
    }

    /// Builds generation `serial` with `health` at `now`, signed.
    pub(crate) fn build(
        &mut self,
        health: crate::answer::HealthView,
        now: u64,
        serial: u32,
    ) -> crate::answer::Snapshot {
        let signing = crate::answer::Signing {
            keys: &self.keys,
            now,
            cache: &mut self.cache,
        };
        crate::answer::build(
            self.topology.clone(),
            &self.zone,
            std::sync::Arc::new(health),
            &Default::default(),
            serial,
            u64::from(serial),
            Some(signing),
        )
        .expect("answers fit")
    }
}
