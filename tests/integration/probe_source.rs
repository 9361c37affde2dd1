//! `probe.source_address`: probes connect from one of this machine's addresses, and a probe
//! from it is the same strict client as any other (HELO fallback, pipelining checks, pinned
//! relays' verified handshakes).

use std::sync::Arc;
use std::time::Duration;

use smarthostd::probe::DaneFailure;
use smarthostd::probe::smtp::{Passed, Pinned, ProbeSettings, probe};
use smarthostd::probe::tls;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::fake_tls::{BOTH, MAIL1, Relay};
use crate::support::probe_settings;

fn settings(timeout_ms: u64) -> ProbeSettings {
    probe_settings(Duration::from_millis(timeout_ms))
}

#[tokio::test]
async fn probes_leave_from_the_source_address_when_one_is_set() {
    let blocked: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let relay = FakeSmtp::start(Behavior::RefuseFrom(blocked)).await;
    let from = |source: &str| ProbeSettings {
        source: Some(source.parse().unwrap()),
        ..settings(1000)
    };
    let refused = probe(relay.addr, &from("127.0.0.2"))
        .await
        .unwrap_err()
        .reason;
    assert!(
        refused.contains("reset") || refused.contains("closed"),
        "{refused}"
    );
    probe(relay.addr, &from("127.0.0.3")).await.unwrap();
    probe(relay.addr, &settings(1000)).await.unwrap();
    // An IPv6 relay is probed from the system's choice: the source is IPv4.
    let v6 = FakeSmtp::start_on("::1".parse().unwrap(), Behavior::Healthy).await;
    probe(v6.addr, &from("127.0.0.2")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_from_the_source_address_is_as_strict_and_checks_pinned_keys_alike() {
    let source: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    let plain = ProbeSettings {
        source: Some(source),
        ..settings(1000)
    };
    // A relay that only knows HELO passes, and says so.
    let old = FakeSmtp::start(Behavior::EhloRefused("502 5.5.1 EHLO not implemented\r\n")).await;
    let passed = probe(old.addr, &plain).await.unwrap();
    assert!(
        passed
            .note
            .as_deref()
            .is_some_and(|n| n.contains("HELO accepted")),
        "{passed:?}"
    );
    // A relay that answers EHLO before it is sent fails.
    let early = FakeSmtp::start(Behavior::PretalkThenClose("220 x\r\n250 x\r\n")).await;
    let e = probe(early.addr, &plain).await.unwrap_err().reason;
    assert!(e.contains("pipelining violation"), "{e}");
    // A pinned relay: its key matched after a verified handshake; an impostor replaying its
    // certificate without the key is refused as a DANE sender would refuse it.
    let relay = Relay::self_signed(&[MAIL1]);
    let pinned = ProbeSettings {
        tls: Some(tls::client_config(false, None).unwrap()),
        tlsa: Some(Arc::new(Pinned {
            records: vec![relay.record().parse().unwrap()],
            name: MAIL1.into(),
        })),
        ..plain.clone()
    };
    let genuine = FakeSmtp::start(Behavior::Starttls(relay.server(BOTH))).await;
    assert_eq!(probe(genuine.addr, &pinned).await, Ok(Passed::default()));
    let impostor = FakeSmtp::start(Behavior::Starttls(relay.impostor(BOTH))).await;
    let e = probe(impostor.addr, &pinned).await.unwrap_err();
    assert_eq!(e.dane, Some(DaneFailure::KeyNotHeld), "{e}");
    // Every one of those connections left from the source address.
    for host in [&old, &early, &genuine, &impostor] {
        let sources = host.sources.lock().unwrap().clone();
        assert!(
            !sources.is_empty() && sources.iter().all(|s| *s == source),
            "{sources:?}"
        );
    }
}

#[test]
fn a_probe_source_address_must_be_one_of_this_machines() {
    use crate::config::{GOOD, ZONE, error, load};
    let at = |source: &str| {
        GOOD.replace(
            "timeout = \"1s\"",
            &format!("timeout = \"1s\"\nsource_address = \"{source}\""),
        )
    };
    let (loaded, _dir) = load(&at("127.0.0.2"), ZONE);
    assert_eq!(
        loaded.unwrap().config.probe.source_address,
        Some("127.0.0.2".parse().unwrap())
    );
    for (source, want) in [
        ("192.0.2.1", "not an address of this machine"),
        ("0.0.0.0", "one of this machine's addresses"),
    ] {
        let e = error(&at(source), ZONE).to_string();
        assert!(
            e.contains("probe.source_address") && e.contains(want),
            "{e}"
        );
    }
}
