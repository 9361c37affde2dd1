//! Blocklist checks of the sites' egress addresses against real DNS blocklists on loopback: a
//! second smarthostd serving a blocklist zone from a zone file, or a responder the test
//! changes as it goes (SERVFAIL, silence). Nothing leaves loopback.

mod demotion;
mod listing;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use smarthostd::health::status::{SiteReputation, StatusReport};
use smarthostd::state::drains::Drain;

use crate::blocklist::{Blocklist, Mode};
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// The blocklist zone the second smarthostd serves, under its origin.
const LIST_ZONE: &str = "bl.smarthost.internal";
/// 198.51.100.7 (oxford's egress) listed, with a reason.
const OXFORD_V4: &str = "7.100.51.198.bl IN A 127.0.0.2\n\
7.100.51.198.bl IN TXT \"listed for testing: https://bl.example/198.51.100.7\"\n";
/// 2001:db8::25 (oxford's other egress) listed, by its nibble name.
const OXFORD_V6: &str =
    "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl IN A 127.0.0.4\n";
/// 198.51.100.8 (cambridge's egress) answered with Spamhaus's "public resolver" error code.
const CAMBRIDGE_REFUSED: &str = "8.100.51.198.bl IN A 127.255.255.254\n";

/// The sites of one relay each, checked as `reputation` says: oxford sends from 198.51.100.7
/// and 2001:db8::25, cambridge from 198.51.100.8, london from 198.51.100.9; `oxford_extra`
/// goes into oxford's table.
fn checked(relays: &Relays, oxford_extra: &str, reputation: String) -> Setup {
    let oxford = format!("egress = [\"198.51.100.7\", \"2001:db8::25\"]\n{oxford_extra}");
    let sites = relays.toml_with(&[
        ("oxford", &oxford),
        ("cambridge", "egress = [\"198.51.100.8\"]"),
        ("london", "egress = [\"198.51.100.9\"]"),
    ]);
    Setup::new(format!("{sites}{reputation}"))
}

/// `[reputation]` asking `resolver` about the test list every second.
fn reputation(resolver: SocketAddr, zone: &str, action: &str, hold: &str) -> String {
    format!(
        "[reputation]\nlists = [{{ zone = \"{zone}\", name = \"bl\" }}]\nresolver = [\"{resolver}\"]\n\
         interval = \"1s\"\ntimeout = \"300ms\"\naction = \"{action}\"\nhold = \"{hold}\"\n"
    )
}

/// A second smarthostd serving the blocklist zone with `records`.
async fn list_server(records: &str) -> (TestServer, Setup, FakeSmtp) {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.x]\nhosts = [{}]\n",
        relay.host_entry("mail1")
    ));
    setup.zone_file = format!("{ZONE}{records}");
    (TestServer::start(&setup).await, setup, relay)
}

/// Polls the status until `want` holds for it, or fails after [`DEADLINE`].
async fn wait_status(
    server: &TestServer,
    what: &str,
    want: impl Fn(&StatusReport) -> bool,
) -> StatusReport {
    let want = &want;
    eventually(what, || async move {
        let status = server.control.status().await.unwrap();
        if want(&status) {
            Ok(status)
        } else {
            Err(format!("{:#?}", status.sites))
        }
    })
    .await
}

/// The blocklist status of site `i`.
fn rep(status: &StatusReport, i: usize) -> &SiteReputation {
    status.sites[i]
        .reputation
        .as_ref()
        .expect("a blocklist status")
}

/// The TXT strings at `name`.
async fn txt(server: SocketAddr, name: &str) -> Vec<String> {
    udp(server, name, RecordType::TXT)
        .await
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

/// The standard output of `smarthostd ARGS`, which must succeed.
async fn cli(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_smarthostd"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn rep_of(site: &smarthostd::health::status::SiteStatus) -> &SiteReputation {
    site.reputation.as_ref().unwrap()
}
