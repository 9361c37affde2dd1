//! SMTP probes against real listeners, and failover seen in the DNS answers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use smarthostd::probe::smtp::{Passed, ProbeSettings, probe};
use smarthostd::probe::tls;

use crate::fake_smtp::{Behavior, FakeSmtp, tls_server_config};
use crate::support::*;

fn settings(timeout_ms: u64) -> ProbeSettings {
    probe_settings(Duration::from_millis(timeout_ms))
}

async fn outcome(behavior: Behavior, timeout_ms: u64) -> Result<Passed, String> {
    probe_outcome(behavior, &settings(timeout_ms)).await
}

#[tokio::test]
async fn a_healthy_host_with_a_multi_line_ehlo_reply_passes() {
    assert_eq!(outcome(Behavior::Healthy, 500).await, Ok(Passed::default()));
}

#[tokio::test]
async fn each_failure_has_a_reason_a_person_understands() {
    let closed = FakeSmtp::closed().await;
    assert_eq!(
        probe(closed, &settings(500)).await,
        Err("connection refused".into())
    );

    let started = Instant::now();
    let silent = outcome(Behavior::Silent, 300).await.unwrap_err();
    assert_eq!(silent, "no greeting reply within 300ms");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );

    let busy = outcome(Behavior::Busy, 500).await.unwrap_err();
    assert_eq!(busy, "greeting was \"421 4.3.2 too busy, try later\"");

    let closed_on_ehlo = outcome(Behavior::CloseOnEhlo, 500).await.unwrap_err();
    assert_eq!(closed_on_ehlo, "connection closed (EHLO)");

    let slow = outcome(Behavior::SlowGreeting(Duration::from_millis(600)), 300)
        .await
        .unwrap_err();
    assert_eq!(slow, "no greeting reply within 300ms");
    assert_eq!(
        outcome(Behavior::SlowGreeting(Duration::from_millis(50)), 500).await,
        Ok(Passed::default())
    );
}

#[tokio::test]
async fn starttls_must_be_offered_and_complete() {
    let config = tls_server_config();
    let unverified = tls::client_config(false, None).unwrap();
    let mut s = settings(1000);
    s.tls = Some(unverified);
    let plain = FakeSmtp::start(Behavior::Healthy).await;
    assert_eq!(
        probe(plain.addr, &s).await,
        Err("STARTTLS is required but not offered".into())
    );
    let tls_host = FakeSmtp::start(Behavior::Starttls(config.clone())).await;
    assert_eq!(probe(tls_host.addr, &s).await, Ok(Passed::default()));
    // With verification on, a self-signed certificate fails the handshake.
    s.tls = Some(tls::client_config(true, None).unwrap());
    let e = probe(tls_host.addr, &s).await.unwrap_err().reason;
    assert!(e.starts_with("TLS handshake failed"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_certificate_is_checked_against_tls_name_for_hosts_given_by_address() {
    let (config, pem) = crate::fake_smtp::tls_server_config_and_pem();
    let named = FakeSmtp::start(Behavior::Starttls(config.clone())).await;
    let unnamed = FakeSmtp::start(Behavior::Starttls(config)).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let entry = |h: &FakeSmtp, name: &str, extra: &str| {
        format!(
            "{{ name = \"{name}\", addresses = [\"{}\"], port = {}, starttls = true{extra} }}",
            h.addr.ip(),
            h.addr.port()
        )
    };
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
        entry(&named, "mail1", ", tls_name = \"relay.test\""),
        entry(&unnamed, "mail2", ""),
        cambridge.host_entry("mail1")
    ));
    setup
        .probe
        .push_str("tls_verify = true\ntls_ca_file = \"relays-ca.pem\"\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("relays-ca.pem"), pem).unwrap();
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")],
        "the relay whose certificate carries its tls_name passes; the other is checked against its IP"
    );
    let status = server.control.status().await.unwrap();
    let reason = status.sites[0].hosts[1].addresses[0]
        .reason
        .clone()
        .unwrap();
    assert!(reason.starts_with("TLS handshake failed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_greets_leaks_no_connection() {
    let host = FakeSmtp::start(Behavior::Silent).await;
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let rest = two_sites(&host, &other);
    let mut setup = Setup::new(rest);
    setup.probe = "[probe]\ninterval = \"100ms\"\ntimeout = \"150ms\"\n".into();
    let server = TestServer::start(&setup).await;
    eventually("twelve probes", || async {
        host.connections.load(Ordering::Relaxed) >= 12
    })
    .await;
    assert!(
        host.open.load(Ordering::Relaxed) <= 1,
        "each stalled probe closed its socket"
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    let status = server.control.status().await.unwrap();
    let reason = status.sites[0].hosts[0].addresses[0]
        .reason
        .clone()
        .unwrap();
    assert_eq!(reason, "no greeting reply within 150ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_answers_already_reflect_health() {
    let dead = FakeSmtp::closed().await;
    let live = FakeSmtp::start(Behavior::Healthy).await;
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let rest = format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {} }}, {}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        dead.ip(),
        dead.port(),
        live.host_entry("mail2"),
        other.host_entry("mail1")
    );
    let server = TestServer::start(&Setup::new(rest)).await;
    // No waiting: the server answers only after its first probe round.
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail2.oxford"), mx(20, "mail1.cambridge")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_probe_does_not_fail_a_site_over() {
    let host = FakeSmtp::start(Behavior::Healthy).await;
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let rest = two_sites(&host, &other);
    let server = TestServer::start(&Setup::new(rest)).await;
    let before = host.connections.load(Ordering::Relaxed);
    host.set_behavior(Behavior::FailOnce);
    // Watch the answer through the failure, the at-once confirmation and two more probes.
    eventually("four more probes", || async {
        let answer = server.mx("oxford.smarthost.internal").await;
        assert_eq!(
            answer[0],
            mx(10, "mail1.oxford"),
            "no failover on one lost probe"
        );
        host.connections.load(Ordering::Relaxed) >= before + 4
    })
    .await;
    let status = server.control.status().await.unwrap();
    assert_eq!(status.sites[0].hosts[0].addresses[0].state, "up");
    let metrics = server.control.metrics.encode();
    assert!(
        !metrics.contains("to=\"down\""),
        "no transition to down counted:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_dies_and_returns_is_seen_in_every_site_answer() {
    let mut oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let rest = two_sites(&oxford, &cambridge);
    let server = TestServer::start(&Setup::new(rest)).await;
    let serial = |m: &hickory_proto::op::Message| match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        _ => panic!("not an SOA"),
    };
    let serial_before = serial(&udp(server.dns, "smarthost.internal", RecordType::SOA).await);
    assert_eq!(
        server.mx("cambridge.smarthost.internal").await,
        vec![mx(10, "mail1.cambridge"), mx(20, "mail1.oxford")]
    );

    oxford.stop();
    let killed = Instant::now();
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m == [mx(20, "mail1.cambridge")]
        })
        .await;
    server
        .wait_mx("cambridge.smarthost.internal", |m| {
            m == [mx(10, "mail1.cambridge")]
        })
        .await;
    let detected = killed.elapsed();
    // interval 200 ms (+10 %) and an immediate confirmation: well under a second.
    assert!(
        detected < Duration::from_secs(3),
        "withdrawn after {detected:?}"
    );
    let serial_after = serial(&udp(server.dns, "smarthost.internal", RecordType::SOA).await);
    assert!(
        serial_after > serial_before,
        "the SOA serial grows with the answer"
    );
    let a = udp(server.dns, "mail1.oxford.smarthost.internal", RecordType::A).await;
    assert_eq!(
        a.answers[0].ttl, 15,
        "a down host's records carry the degraded TTL"
    );

    oxford.restart().await;
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m == [mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")]
        })
        .await;
    server
        .wait_mx("cambridge.smarthost.internal", |m| {
            m == [mx(10, "mail1.cambridge"), mx(20, "mail1.oxford")]
        })
        .await;
    let metrics = server.control.metrics.encode();
    assert!(metrics.contains("to=\"down\""), "the transition is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_named_by_dns_is_resolved_and_every_address_probed() {
    // A second smarthostd serves the relay's name: real DNS, on loopback.
    let relay_a = FakeSmtp::start(Behavior::Healthy).await;
    let port = relay_a.addr.port();
    let relay_b_ip = crate::fake_smtp::next_loopback();
    let zone_with = |extra: &str| format!("{ZONE}relay 1 IN A {}\n{extra}", relay_a.addr.ip());
    let other = FakeSmtp::start(Behavior::Healthy).await;
    let mut dns_setup = Setup::new(format!(
        "[sites.x]\nhosts = [{}]\n",
        other.host_entry("mail1")
    ));
    dns_setup.zone_file = zone_with("");
    let names = TestServer::start(&dns_setup).await;

    let rest = format!(
        "[sites.oxford]\nhosts = [{{ name = \"isp1\", fqdn = \"relay.smarthost.internal\", port = {port} }}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        other.host_entry("mail1")
    );
    let mut setup = Setup::new(rest);
    setup
        .probe
        .push_str(&format!("resolver = [\"{}\"]\n", names.dns));
    let server = TestServer::start(&setup).await;
    let answer = server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.first() == Some(&mx(10, "isp1.oxford"))
        })
        .await;
    assert_eq!(answer.len(), 2);
    let a = udp(server.dns, "isp1.oxford.smarthost.internal", RecordType::A).await;
    assert_eq!(a.answers[0].data.ip_addr(), Some(relay_a.addr.ip()));

    // The name gains a second address, where nothing listens: it is probed and not served.
    dns_setup.zone_file = zone_with(&format!("relay 1 IN A {relay_b_ip}\n"));
    names.rewrite(&dns_setup);
    names.control.reload().await.unwrap();
    eventually("the new address probed", || async {
        let status = server.control.status().await.unwrap();
        let addresses = &status.sites[0].hosts[0].addresses;
        let probed = addresses.len() == 2
            && addresses
                .iter()
                .any(|a| a.address == relay_b_ip && a.state == "down");
        if probed {
            Ok(())
        } else {
            Err(format!("{addresses:?}"))
        }
    })
    .await;
    let a = udp(server.dns, "isp1.oxford.smarthost.internal", RecordType::A).await;
    let ips: Vec<_> = a.answers.iter().filter_map(|r| r.data.ip_addr()).collect();
    assert_eq!(
        ips,
        vec![relay_a.addr.ip()],
        "only the healthy address is served"
    );

    // The name server goes away: once a resolution has failed, the last known addresses stay.
    names.stop().await;
    let error = eventually_within(Duration::from_secs(20), "a failed resolution", || async {
        let status = server.control.status().await.unwrap();
        status.sites[0].hosts[0].resolve_error.clone()
    })
    .await;
    assert!(!error.is_empty());
    assert_eq!(
        server.mx("oxford.smarthost.internal").await[0],
        mx(10, "isp1.oxford")
    );
}
