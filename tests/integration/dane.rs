//! Pinned relays (TLSA records) probed as a DANE sender checks them, over real STARTTLS on
//! loopback: the relay with the pinned key is served, an impostor at its address is withdrawn
//! within one probe interval and two timeouts, and so is one that replays the relay's
//! certificate without its key; DANE-TA chains; a key rollover; an impostor that comes and
//! goes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use smarthostd::events::Kind;
use smarthostd::probe::smtp::{Passed, Pinned, ProbeSettings, probe};
use smarthostd::probe::{DaneFailure, tls};

use crate::events::{change, wait_events};
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::fake_tls::{BOTH, Ca, MAIL1, Relay, TLS12, TLS13};
use crate::support::*;

const OXFORD: &str = "oxford.smarthost.internal";

/// Probe settings for a STARTTLS probe, pinned to `records` when given.
fn settings(records: Option<&[String]>) -> ProbeSettings {
    ProbeSettings {
        tls: Some(tls::client_config(false, None).unwrap()),
        tlsa: records.map(|r| {
            Arc::new(Pinned {
                records: r.iter().map(|t| t.parse().unwrap()).collect(),
                name: MAIL1.into(),
            })
        }),
        ..probe_settings(Duration::from_secs(1))
    }
}

/// Oxford's mail1 at `relay` with `pin` (`tls_key = ...` or `tlsa = [...]`), Cambridge's mail1
/// a plain healthy relay.
fn sites(relay: &FakeSmtp, pin: &str, cambridge: &FakeSmtp) -> String {
    format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {}, {pin} }}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        relay.addr.ip(),
        relay.addr.port(),
        cambridge.host_entry("mail1")
    )
}

fn tlsa(records: &[String]) -> String {
    let quoted: Vec<String> = records.iter().map(|r| format!("\"{r}\"")).collect();
    format!("tlsa = [{}]", quoted.join(", "))
}

/// The value of `smarthostd_tlsa_mismatch` for oxford/mail1 at `relay`, if exported.
fn mismatch_gauge(server: &TestServer, relay: &FakeSmtp) -> Option<String> {
    let metrics = server.control.metrics.encode();
    let series = format!(
        "smarthostd_tlsa_mismatch{{site=\"oxford\",host=\"mail1\",address=\"{}\"}} ",
        relay.addr.ip()
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series).map(str::to_string))
}

async fn reason(server: &TestServer) -> String {
    let status = server.control.status().await.unwrap();
    status.sites[0].hosts[0].addresses[0]
        .reason
        .clone()
        .unwrap_or_default()
}

/// Waits until `relay` has been probed `n` more times.
async fn probed(relay: &FakeSmtp, n: usize) {
    let until = relay.connections.load(Ordering::Relaxed) + n;
    eventually(format!("{n} more probes"), || async {
        relay.connections.load(Ordering::Relaxed) >= until
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_relay_is_served_and_an_impostor_at_its_address_is_withdrawn_in_time() {
    let real = Relay::self_signed(&[MAIL1]);
    let relay = FakeSmtp::start(Behavior::Starttls(real.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail1.pem"), real.pem()).unwrap();
    let setup = Setup::new(sites(&relay, "tls_key = \"mail1.pem\"", &cambridge));
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(
        server.mx(OXFORD).await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")],
        "the relay that holds the pinned key leads its site's answer"
    );
    assert_eq!(mismatch_gauge(&server, &relay).as_deref(), Some("0"));

    let impostor = Relay::self_signed(&[MAIL1]);
    relay.set_behavior(Behavior::Starttls(impostor.server(BOTH)));
    let swapped = Instant::now();
    server
        .wait_mx(OXFORD, |mx| !mx.contains(&self::mx(10, "mail1.oxford")))
        .await;
    let took = swapped.elapsed();
    // probe.interval (200ms) plus two probe.timeout (1s).
    assert!(
        took < Duration::from_millis(2200),
        "withdrawn {took:?} after the swap"
    );
    assert_eq!(server.mx(OXFORD).await, vec![mx(20, "mail1.cambridge")]);
    let why = reason(&server).await;
    assert!(
        why.starts_with(
            "certificate matches none of its TLSA records: a DANE sender would refuse it (records: 3 1 1 "
        ),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "shown: a key whose record is {})",
            impostor.record()
        )),
        "{why}"
    );
    let events = wait_events(&server, "the key's mismatch", |list| {
        list.iter().any(|e| {
            change(
                e,
                Kind::Tlsa,
                "oxford",
                Some("mail1"),
                "matched",
                "mismatched",
            )
        })
    })
    .await;
    let state = events
        .iter()
        .find(|e| change(e, Kind::State, "oxford", Some("mail1"), "up", "down"))
        .expect("a state event");
    assert_eq!(state.reason.as_deref(), Some(why.as_str()));
    assert_eq!(mismatch_gauge(&server, &relay).as_deref(), Some("1"));

    relay.set_behavior(Behavior::Starttls(real.server(BOTH)));
    server
        .wait_mx(OXFORD, |mx| {
            mx.first() == Some(&self::mx(10, "mail1.oxford"))
        })
        .await;
    wait_events(&server, "the key matching again", |list| {
        list.iter().any(|e| {
            change(
                e,
                Kind::Tlsa,
                "oxford",
                Some("mail1"),
                "mismatched",
                "matched",
            )
        })
    })
    .await;
    assert_eq!(mismatch_gauge(&server, &relay).as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_shows_a_certificate_without_its_key_fails_over_tls_1_2_and_1_3() {
    let not_held = "TLS handshake failed: its handshake signature does not verify with the key of the certificate it presented: it does not hold that certificate's private key";
    for versions in [TLS12, TLS13] {
        let real = Relay::self_signed(&[MAIL1]);
        let genuine = FakeSmtp::start(Behavior::Starttls(real.server(versions))).await;
        let replay = FakeSmtp::start(Behavior::Starttls(real.impostor(versions))).await;
        let pinned = settings(Some(&[real.record()]));
        assert_eq!(probe(genuine.addr, &pinned).await, Ok(Passed::default()));
        let e = probe(replay.addr, &pinned).await.unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.dane),
            (not_held, Some(DaneFailure::KeyNotHeld))
        );
        // An unpinned STARTTLS probe checks the signature too: such a relay fails every sender.
        let plain = settings(None);
        assert_eq!(probe(genuine.addr, &plain).await, Ok(Passed::default()));
        let e = probe(replay.addr, &plain).await.unwrap_err();
        assert_eq!((e.reason.as_str(), e.dane), (not_held, None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_ta_passes_the_internal_ca_s_chain_with_the_relay_s_name_and_nothing_else() {
    let ca = Ca::new();
    let other = Ca::new();
    let good = Relay::issued_by(&ca, &[MAIL1]);
    let foreign = Relay::issued_by(&other, &[MAIL1]);
    let misnamed = Relay::issued_by(&ca, &["mail2.oxford.smarthost.internal"]);
    let relay = FakeSmtp::start(Behavior::Starttls(good.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let server = TestServer::start(&Setup::new(sites(
        &relay,
        &tlsa(&[ca.record()]),
        &cambridge,
    )))
    .await;
    assert_eq!(server.mx(OXFORD).await[0], mx(10, "mail1.oxford"));

    relay.set_behavior(Behavior::Starttls(foreign.server(BOTH)));
    server
        .wait_mx(OXFORD, |mx| mx == [self::mx(20, "mail1.cambridge")])
        .await;
    let why = reason(&server).await;
    assert!(
        why.contains(&format!("records: {}", &ca.record()[..22])),
        "{why}"
    );
    assert!(why.contains(&foreign.record()), "{why}");

    let pinned = settings(Some(&[ca.record()]));
    let named = FakeSmtp::start(Behavior::Starttls(misnamed.server(BOTH))).await;
    let e = probe(named.addr, &pinned).await.unwrap_err();
    assert_eq!(e.dane, Some(DaneFailure::Mismatch));
    assert!(
        e.reason
            .contains(&format!("does not carry the name {MAIL1}")),
        "{}",
        e.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rollover_with_both_records_published_never_takes_the_relay_down() {
    let old = Relay::self_signed(&[MAIL1]);
    let new = Relay::self_signed(&[MAIL1]);
    let relay = FakeSmtp::start(Behavior::Starttls(old.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let both = Setup::new(sites(
        &relay,
        &tlsa(&[old.record(), new.record()]),
        &cambridge,
    ));
    let server = TestServer::start(&both).await;
    assert_eq!(server.mx(OXFORD).await[0], mx(10, "mail1.oxford"));
    // The relay switches to its next key.
    relay.set_behavior(Behavior::Starttls(new.server(BOTH)));
    probed(&relay, 4).await;
    // The old record goes.
    server.rewrite(&Setup::new(sites(
        &relay,
        &tlsa(&[new.record()]),
        &cambridge,
    )));
    server.control.reload().await.unwrap();
    probed(&relay, 4).await;
    let status = server.control.status().await.unwrap();
    assert_eq!(status.sites[0].hosts[0].addresses[0].state, "up");
    let downs = server.control.events().list(&Default::default());
    assert!(
        !downs
            .iter()
            .any(|e| e.kind == Kind::State && e.to.as_deref() == Some("down")),
        "never down: {downs:#?}"
    );
    // The old key is no longer pinned.
    relay.set_behavior(Behavior::Starttls(old.server(BOTH)));
    server
        .wait_mx(OXFORD, |mx| mx == [self::mx(20, "mail1.cambridge")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_that_answers_every_other_connection_is_kept_out() {
    let real = Relay::self_signed(&[MAIL1]);
    let relay = FakeSmtp::start(Behavior::Starttls(real.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(sites(&relay, &tlsa(&[real.record()]), &cambridge));
    // Flap protection that an ordinary failure every other probe never gets through.
    setup.probe = "[probe]\ninterval = \"200ms\"\ntimeout = \"1s\"\nrise = 2\nfall = 3\n".into();
    let server = TestServer::start(&setup).await;
    assert_eq!(server.mx(OXFORD).await[0], mx(10, "mail1.oxford"));
    let impostor = Relay::self_signed(&[MAIL1]);
    relay.set_behavior(Behavior::Cycle(Arc::new([
        Behavior::Starttls(impostor.server(BOTH)),
        Behavior::Starttls(real.server(BOTH)),
    ])));
    server
        .wait_mx(OXFORD, |mx| mx == [self::mx(20, "mail1.cambridge")])
        .await;
    // Every other probe passes, and never two in a row: it stays out.
    for _ in 0..6 {
        probed(&relay, 1).await;
        assert_eq!(server.mx(OXFORD).await, vec![mx(20, "mail1.cambridge")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_key_file_again_and_a_bad_one_keeps_the_running_config() {
    let current = Relay::self_signed(&[MAIL1]);
    let next = Relay::self_signed(&[MAIL1]);
    let relay = FakeSmtp::start(Behavior::Starttls(current.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("mail1.pem");
    std::fs::write(&key_file, current.pem()).unwrap();
    let setup = Setup::new(sites(&relay, "tls_key = \"mail1.pem\"", &cambridge));
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(server.mx(OXFORD).await[0], mx(10, "mail1.oxford"));
    // The file now holds the next key; the relay still shows the current one.
    std::fs::write(&key_file, next.pem()).unwrap();
    server.control.reload().await.unwrap();
    server
        .wait_mx(OXFORD, |mx| mx == [self::mx(20, "mail1.cambridge")])
        .await;
    std::fs::write(&key_file, "not a certificate\n").unwrap();
    let e = server.control.reload().await.unwrap_err().to_string();
    assert!(
        e.contains("sites.oxford.hosts[0].tls_key") && e.contains("mail1.pem is not PEM"),
        "{e}"
    );
    relay.set_behavior(Behavior::Starttls(next.server(BOTH)));
    server
        .wait_mx(OXFORD, |mx| {
            mx.first() == Some(&self::mx(10, "mail1.oxford"))
        })
        .await;
}
