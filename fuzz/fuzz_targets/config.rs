//! Config and zone text through the checks `smarthostd check-config` and a reload run:
//! `config::parse`, `Topology::from_config`, `StaticZone::parse`, `check_against`, and
//! `answer::build`; then a few queries answered from the snapshot built.
//!
//! Input: TOML text, a NUL byte, zone file text. With no NUL the whole input is the TOML and
//! the zone is the shipped `zones/smarthost.internal.zone`.
//!
//! Errors are fine; panics and hangs are not. Every `ConfigError` must say something, and a
//! position it gives must be a line of the text it names (1 ..= lines + 1) and a column >= 1.
//! Every answer from a built snapshot must parse and fit its transport.

#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use smarthostd::config::ConfigError;
use smarthostd::dns::answer_with;
use smarthostd::dns::cookie::Cookies;
use smarthostd::answer::HealthView;
use smarthostd::topology::Topology;
use smarthostd::wire::fqdn;
use smarthostd::zone::StaticZone;
use smarthostd_fuzz::hex;

const DEFAULT_ZONE: &str = include_str!("../../zones/smarthost.internal.zone");

fn check_error(e: &ConfigError, text: &str) {
    let shown = e.to_string();
    assert!(!shown.is_empty(), "an empty error");
    assert!(!e.message.trim().is_empty(), "an error with no message: {shown}");
    if let Some((line, column)) = e.position {
        let lines = text.lines().count();
        assert!(
            (1..=lines + 1).contains(&line) && column >= 1,
            "position {line}:{column} outside a text of {lines} lines: {shown}\n--- text ---\n{text}"
        );
    }
}

/// A query for `name` (wire form), type `qtype`, with an OPT record of `payload` if given.
fn query(name: &[u8], qtype: u16, payload: Option<u16>) -> Vec<u8> {
    let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(payload.is_some())];
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if let Some(p) = payload {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&p.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

fn wire(name: &hickory_proto::rr::Name) -> Vec<u8> {
    smarthostd::wire::wire_name(name)
}

fuzz_target!(|data: &[u8]| {
    let (toml_bytes, zone_bytes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, DEFAULT_ZONE.as_bytes()),
    };
    let (Ok(toml_text), Ok(zone_text)) = (
        std::str::from_utf8(toml_bytes),
        std::str::from_utf8(zone_bytes),
    ) else {
        return;
    };

    // The zone file on its own, for the shipped origin.
    let origin = fqdn("smarthost.internal").unwrap();
    let zone = StaticZone::parse(Path::new("z.zone"), zone_text.to_string(), &origin);
    if let Err(e) = &zone {
        check_error(e, zone_text);
    }

    let config = match smarthostd::config::parse(Path::new("fuzz.toml"), toml_text) {
        Ok(c) => c,
        Err(e) => {
            check_error(&e, toml_text);
            return;
        }
    };
    let Ok(topology) = Topology::from_config(&config) else {
        return;
    };
    // As `loaded::from_config` does: the zone file read for the config's own origin.
    let zone = if topology.origin == origin {
        zone
    } else {
        StaticZone::parse(Path::new("z.zone"), zone_text.to_string(), &topology.origin)
    };
    let zone = match zone {
        Ok(z) => z,
        Err(e) => {
            check_error(&e, zone_text);
            return;
        }
    };
    if let Err(e) = zone.check_against(&topology) {
        check_error(&e, zone_text);
        return;
    }
    let topology = Arc::new(topology);
    let health = Arc::new(HealthView::all_up(&topology));
    // Every site with egress addresses demoted, as if each were listed.
    let mut demotions = smarthostd::answer::Demotions::none();
    for (site, s) in config.sites.values().enumerate() {
        if !s.egress.is_empty() {
            demotions.demote(site, "listed");
        }
    }
    let Ok(snapshot) =
        smarthostd::answer::build(topology.clone(), &zone, health, &demotions, 1, 1, None)
    else {
        return;
    };

    // Answers from what was built: site MX, host A/AAAA, the apex and shared names.
    let edns_payload = config.server.edns_udp_payload;
    let mut names: Vec<Vec<u8>> = vec![wire(&topology.origin)];
    names.extend(topology.sites.iter().map(|s| wire(&s.domain)));
    names.extend(topology.hosts.iter().map(|h| wire(&h.fqdn)));
    names.extend(topology.view_names.iter().map(wire));
    let src: SocketAddr = "192.0.2.1:40053".parse().unwrap();
    let Ok(cookies) = Cookies::with_clock(&config.server.cookies.keys(), || 1_700_000_000) else {
        return;
    };
    let mut out = Vec::new();
    for name in names.iter().take(64) {
        for qtype in [15u16, 1, 28, 6, 2] {
            for (payload, tcp) in [(None, false), (Some(1232), false), (Some(4096), true)] {
                let raw = query(name, qtype, payload);
                let Some(_) = answer_with(&snapshot, edns_payload, &cookies, &raw, src, tcp, &mut out)
                else {
                    panic!("no answer to {}", hex(&raw));
                };
                let limit = if tcp {
                    usize::from(u16::MAX)
                } else {
                    usize::from(payload.unwrap_or(512).min(edns_payload)).max(512)
                };
                assert!(
                    out.len() <= limit,
                    "answer of {} bytes over {limit} to {}",
                    out.len(),
                    hex(&raw)
                );
                if let Err(e) = Message::from_vec(&out) {
                    panic!("answer to {} does not parse ({e}): {}", hex(&raw), hex(&out));
                }
            }
        }
    }
});
