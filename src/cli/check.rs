//! `smarthostd check-config`: every check the server makes at start, without serving.

use std::path::Path;

use super::error::CliError;
use crate::loaded::{self, Loaded};

/// Postfix tries at most this many addresses per delivery attempt (`smtp_mx_address_limit`).
pub(super) const POSTFIX_MX_ADDRESS_LIMIT: usize = 5;

/// Exits 1 (not 2) for a config that is not valid: that is the answer asked for, and the code
/// it has always had.
pub(super) fn run(path: &Path) -> Result<(), CliError> {
    let loaded = loaded::load(path).map_err(|e| format!("config error: {e}"))?;
    let topology = &loaded.topology;
    println!(
        "{}: valid — zone {}, {} sites, {} smart hosts",
        path.display(),
        topology.origin,
        topology.sites.len(),
        topology.hosts.len()
    );
    for warning in postfix_warnings(&loaded) {
        println!("warning: {warning}");
    }
    for warning in crate::config::reputation::warnings(&loaded.config) {
        println!("warning: {warning}");
    }
    for warning in crate::config::cluster::warnings(&loaded.config) {
        println!("warning: {warning}");
    }
    for warning in crate::config::transfer::warnings(&loaded.config) {
        println!("warning: {warning}");
    }
    for warning in crate::config::tlsa::warnings(&loaded.config) {
        println!("warning: {warning}");
    }
    for warning in topology.tlsa_gap_warnings() {
        println!("warning: {warning}");
    }
    if let Some(keys) = &loaded.keys {
        let now = crate::dnssec::unix_seconds(std::time::SystemTime::now());
        println!(
            "signed with {} key(s) from {}: {} published, {} signing now",
            keys.keys.keys.len(),
            keys.dir.display(),
            keys.keys.published(now).count(),
            keys.keys.signing(now).zone.len()
        );
        for warning in keys
            .keys
            .warnings
            .iter()
            .chain(&keys.keys.timing_warnings(now))
        {
            println!("warning: {warning}");
        }
    }
    Ok(())
}

/// Sites whose local group alone fills Postfix's address limit: while those relays are listed
/// but unreachable (before smarthostd withdraws them, or in the failsafe), a Postfix delivery
/// attempt never reaches the fallback site.
pub fn postfix_warnings(loaded: &Loaded) -> Vec<String> {
    let topology = &loaded.topology;
    topology
        .sites
        .iter()
        .filter(|site| !site.fallback.is_empty())
        .filter_map(|site| {
            let addresses: usize = site.hosts.iter().map(|&h| topology.hosts[h].addresses.len()).sum();
            (addresses >= POSTFIX_MX_ADDRESS_LIMIT).then(|| {
                format!(
                    "site {}: its first MX group has {addresses} addresses; Postfix tries at most \
                     smtp_mx_address_limit = {POSTFIX_MX_ADDRESS_LIMIT} per delivery attempt, so while these \
                     relays are listed but unreachable an attempt never reaches the fallback site \
                     (raise smtp_mx_address_limit, or use fewer relays per site)",
                    site.name
                )
            })
        })
        .collect()
}
