//! `smarthostd dnssec keygen` and `smarthostd dnssec ds`: a new signing key in `key_dir`, and
//! what a parent zone or a validating resolver needs to trust the zone.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::error::CliError;
use crate::dnssec::{self, anchors, keygen};
use crate::{config, loaded};

/// The `dnssec` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum Dnssec {
    /// Write a new combined signing key (flags 257, published and active now) into key_dir.
    Keygen(ConfigArg),
    /// Print the DNSKEY and DS records of the published key-signing keys, and trust anchors
    /// for unbound, BIND, Knot Resolver and PowerDNS Recursor.
    Ds(ConfigArg),
}

#[derive(Debug, Clone, Args)]
pub(super) struct ConfigArg {
    /// The config file; its [dnssec] table names key_dir.
    #[arg(long, short, default_value = super::DEFAULT_CONFIG)]
    config: PathBuf,
}

pub(super) fn run(command: &Dnssec) -> Result<(), CliError> {
    match command {
        Dnssec::Keygen(args) => keygen(args),
        Dnssec::Ds(args) => ds(args),
    }
}

fn keygen(args: &ConfigArg) -> Result<(), CliError> {
    // Only the config: the key folder may be empty (or missing) until this command has run.
    let config =
        config::load(&args.config).map_err(|e| CliError::Usage(format!("config error: {e}")))?;
    let Some(d) = &config.dnssec else {
        return Err(CliError::Usage(format!(
            "{} has no [dnssec] table: add one with key_dir = \"keys\" first",
            args.config.display()
        )));
    };
    let origin = crate::wire::fqdn(&config.zone.origin).map_err(|e| e.to_string())?;
    let dir = d.key_dir_path(&config.path);
    let now = dnssec::unix_seconds(SystemTime::now());
    let made = keygen::generate(&dir, &origin, d.algorithm, now).map_err(|e| e.to_string())?;
    println!(
        "new {} key {} for {origin}, published and active now:\n  {}\n  {} (mode 0600)",
        d.algorithm.mnemonic(),
        made.tag,
        made.public.display(),
        made.private.display()
    );
    println!(
        "next:\n  1. give the .private file to the user smarthostd runs as (chown), keep it 0600\n  \
         2. smarthostd check-config {0}, then smarthostd reload (or restart)\n  \
         3. smarthostd dnssec ds --config {0}: the trust anchor for your resolvers (or the DS for a parent zone)\n  \
         for a rollover, see deploy/GUIDE.md (\"Key rollover\"): a new key is published before it signs",
        args.config.display()
    );
    Ok(())
}

fn ds(args: &ConfigArg) -> Result<(), CliError> {
    let loaded =
        loaded::load(&args.config).map_err(|e| CliError::Usage(format!("config error: {e}")))?;
    let Some(keys) = &loaded.keys else {
        return Err(CliError::Usage(format!(
            "{} has no [dnssec] table: the zone is served unsigned",
            args.config.display()
        )));
    };
    let now = dnssec::unix_seconds(SystemTime::now());
    let sep: Vec<&dnssec::Key> = keys.keys.published(now).filter(|k| k.is_ksk()).collect();
    if sep.is_empty() {
        return Err(CliError::Failed(format!(
            "no key-signing key (flags 257) is published now in {}",
            keys.dir.display()
        )));
    }
    print!(
        "{}",
        anchors::report(&loaded.topology.origin, &sep, loaded.zone.soa.ttl)
    );
    Ok(())
}
