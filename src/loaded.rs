//! Everything read from disk for one configuration, checked together: the config file, the
//! zone file, the topology they make, and a trial build of every answer.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use crate::answer;
use crate::answer::HealthView;
use crate::config::{self, AdminToken, Config, ConfigError};
use crate::dane::Tlsa;
use crate::dnssec::{self, SignatureCache, ZoneKeys};
use crate::topology::Topology;
use crate::zone::StaticZone;

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config file, parsed and validated.
    pub config: Config,
    /// The sites and hosts it describes, indexed for health and answers.
    pub topology: Arc<Topology>,
    /// The zone file's records, checked against the config.
    pub zone: Arc<StaticZone>,
    /// The signing keys of `[dnssec]`; `None`: the zone is served unsigned.
    pub keys: Option<Arc<ZoneKeys>>,
    /// TLS settings for STARTTLS probes, when any host needs them.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name probes announce in EHLO.
    pub ehlo: String,
    /// The token state changes over TCP need: `server.admin_token`, the file
    /// `server.admin_token_file` (read with the config), or the environment.
    pub admin_token: Option<AdminToken>,
    /// A hash of everything read from disk (config, zone file, CA file): equal fingerprints
    /// mean a reload has nothing to do.
    pub fingerprint: u64,
    /// A hash of what the TLS settings are made from: equal means the running ones stay.
    pub tls_fingerprint: u64,
    /// The config file's text as read (the zone file's is the zone's): the instances of a
    /// cluster compare what they read.
    pub text: String,
}

/// Reads and checks the config at `path` and the zone file it names.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the config file: {e}")))?;
    let config = config::parse(path, &text)?;
    let admin_token = config::token::resolve(&config, &text)?;
    // The key files are read with the config, so that a reload re-reads them.
    let tlsa = config::tlsa::resolve(&config, &text)?;
    let pinned = hash_of(&tlsa);
    let mut loaded = from_config(config, admin_token, tlsa)?;
    let keys = loaded.keys.as_ref().map(|k| k.keys.fingerprint);
    loaded.fingerprint = hash_of(&(
        &text,
        loaded.zone.text(),
        loaded.tls_fingerprint,
        pinned,
        keys,
    ));
    loaded.text = text;
    Ok(loaded)
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Checks a parsed config against its zone file.
fn from_config(
    config: Config,
    admin_token: Option<AdminToken>,
    tlsa: Vec<Vec<Tlsa>>,
) -> Result<Loaded, ConfigError> {
    let topology = Topology::from_config(&config)
        .and_then(|t| t.with_tlsa(tlsa))
        .map_err(|e| {
            ConfigError::new(&config.path, "", format!("a name is not valid in DNS: {e}"))
        })?;
    let zone_path = config.zone.file_path(&config.path);
    let zone = StaticZone::load(&zone_path, &topology.origin)?;
    zone.check_against(&topology)?;
    let topology = Arc::new(topology);
    let keys = dnssec::load(&config, &topology.origin)?.map(Arc::new);
    // With no verdicts every host is served: the largest answers this config can produce,
    // signed as they will be.
    let health = Arc::new(HealthView::all_up(&topology));
    let mut cache = SignatureCache::default();
    let signing = keys.as_deref().map(|keys| answer::Signing {
        keys,
        now: dnssec::unix_seconds(std::time::SystemTime::now()),
        cache: &mut cache,
    });
    answer::build(
        topology.clone(),
        &zone,
        health,
        &Default::default(),
        0,
        0,
        signing,
    )
    .map_err(|e| ConfigError::new(&config.path, "sites", e.to_string()))?;
    let ca = config
        .probe
        .tls_ca_file
        .as_ref()
        .map(|f| match config.path.parent() {
            Some(dir) if f.is_relative() => dir.join(f),
            _ => f.clone(),
        });
    let needs_tls = topology.hosts.iter().any(|h| h.starttls);
    let ca_bytes = match (&ca, needs_tls && config.probe.tls_verify) {
        (Some(path), true) => std::fs::read(path).ok(),
        _ => None,
    };
    let tls_fingerprint = hash_of(&(needs_tls, config.probe.tls_verify, &ca, ca_bytes));
    let tls = if needs_tls {
        let tls = crate::probe::tls::client_config(config.probe.tls_verify, ca.as_deref())
            .map_err(|e| ConfigError::new(&config.path, "probe.tls_ca_file", e))?;
        Some(tls)
    } else {
        None
    };
    let ehlo = config.probe.ehlo.clone().unwrap_or_else(local_host_name);
    Ok(Loaded {
        config,
        topology,
        zone: Arc::new(zone),
        keys,
        tls,
        ehlo,
        admin_token,
        fingerprint: 0,
        tls_fingerprint,
        text: String::new(),
    })
}

/// This machine's host name, for EHLO when `probe.ehlo` is not set.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".to_string())
}
