//! Helpers for unit tests: configs from text, without files.

use std::path::Path;

use crate::config::{self, Config};
use crate::topology::Topology;

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
    let health = std::sync::Arc::new(crate::health::HealthView::all_up(&topology));
    crate::answer::build(topology, &zone, health, &Default::default(), 7, 1).expect("answers fit")
}
