//! Helpers for unit tests: configs from text, without files.

use std::path::Path;

use crate::config::{self, Config};
use crate::topology::Topology;

/// Parses and validates config `text` as if read from `test.toml`.
pub fn config_from(text: &str) -> Config {
    config::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The topology of `config`.
pub fn topology(config: &Config) -> Topology {
    Topology::from_config(config).expect("valid names")
}
