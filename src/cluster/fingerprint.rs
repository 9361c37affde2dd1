//! The fingerprint instances compare to find one whose configuration differs: SHA-256 of
//! what decides the answers and the verdicts — the config file without its per-machine keys,
//! in a canonical form, the zone file's bytes, and each relay's TLSA records as read (a
//! `tls_key` file is read beside the config on each machine, and one that differs makes one
//! instance withdraw a relay the others serve).
//!
//! Left out, since they differ from machine to machine by design and change no answer:
//! `[server]` (listen addresses, admin listener, token, state folder), `[cluster]` (each
//! instance may list the others only), `probe.source_address` and `probe.ehlo` (each machine's
//! own address and name). The rest is read as TOML and written back with its keys sorted, so
//! that comments, blank lines, key order and quoting do not count: two files that say the same
//! have the same fingerprint.

use std::fmt::Write;

use crate::topology::Topology;

/// Keys of the config's top level that are each machine's own.
const MACHINE_TABLES: [&str; 2] = ["server", "cluster"];
/// Keys of `[probe]` that are each machine's own.
const MACHINE_PROBE_KEYS: [&str; 2] = ["source_address", "ehlo"];

/// The fingerprint of a config (`config_text`, already known to be valid TOML), its zone
/// file (`zone_text`) and its relays' TLSA records (`pinned`, [`pinned`]), as 64 hex digits.
pub(crate) fn of(config_text: &str, zone_text: &str, pinned: &str) -> String {
    let mut canonical = String::new();
    if let Ok(mut table) = config_text.parse::<toml::Table>() {
        for key in MACHINE_TABLES {
            table.remove(key);
        }
        if let Some(toml::Value::Table(probe)) = table.get_mut("probe") {
            for key in MACHINE_PROBE_KEYS {
                probe.remove(key);
            }
        }
        write_table(&mut canonical, &table);
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [canonical.as_str(), zone_text, pinned] {
        // Each part's length first, so that no two pairs of parts run together alike.
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    hex(context.finish().as_ref())
}

/// Every relay's TLSA records (those of its `tls_key` included), a line per relay in config
/// order: `site/host` and its records.
pub(crate) fn pinned(topology: &Topology) -> String {
    let mut out = String::new();
    for host in topology.hosts.iter().filter(|h| !h.tlsa.is_empty()) {
        let _ = write!(out, "{}", host.key(topology));
        for record in &host.tlsa {
            let _ = write!(out, " {record}");
        }
        out.push('\n');
    }
    out
}

/// SHA-256 of `bytes`, as 64 hex digits.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `table` with its keys sorted at every level, one unambiguous text per value.
fn write_table(out: &mut String, table: &toml::Table) {
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    out.push('{');
    for key in keys {
        let _ = write!(out, "{key:?}=");
        write_value(out, &table[key]);
        out.push(',');
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &toml::Value) {
    match value {
        toml::Value::Table(t) => write_table(out, t),
        toml::Value::Array(items) => {
            out.push('[');
            for item in items {
                write_value(out, item);
                out.push(',');
            }
            out.push(']');
        }
        toml::Value::String(s) => {
            let _ = write!(out, "s{s:?}");
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n";

    #[test]
    fn comments_order_and_machine_keys_do_not_count() {
        let a = "[server]\nlisten = [\"10.0.0.53:53\"]\n[zone]\norigin = \"x\"\nttl = \"30s\"\n\
                 [probe]\ninterval = \"2s\"\nsource_address = \"10.0.0.53\"\n\
                 [cluster]\npeers = [\"10.0.1.53:8053\"]\n";
        let b = "# the second machine\n[probe]\ninterval = '2s'\nehlo = \"dns2.example\"\n\
                 [zone]\nttl = \"30s\"\norigin = \"x\"\n\
                 [server]\nlisten = [\"10.0.1.53:53\"]\nadmin_token_file = \"t\"\n";
        assert_eq!(of(a, ZONE, ""), of(b, ZONE, ""));
        assert_eq!(of(a, ZONE, "").len(), 64);
    }

    #[test]
    fn what_decides_the_answers_counts() {
        let base = of("[zone]\nttl = \"30s\"\n", ZONE, "");
        assert_ne!(base, of("[zone]\nttl = \"31s\"\n", ZONE, ""));
        assert_ne!(
            base,
            of("[zone]\nttl = \"30s\"\n[probe]\nrise = 3\n", ZONE, "")
        );
        assert_ne!(base, of("[zone]\nttl = \"30s\"\n", "; another zone\n", ""));
        assert_ne!(
            base,
            of("[zone]\nttl = \"30s\"\n", ZONE, "oxford/mail1 3 1 1 ab\n")
        );
        // A string and a number that print alike are not alike.
        assert_ne!(of("a = \"1\"\n", "", ""), of("a = 1\n", "", ""));
    }

    #[test]
    fn sha256_of_nothing_is_the_known_one() {
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
