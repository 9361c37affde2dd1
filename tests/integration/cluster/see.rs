//! See every instance: `/status?cluster=1`, `smarthostd status --cluster` and the page show
//! each instance's verdict and answer side by side; a relay only one instance can reach is a
//! disagreement (event, metric); an instance whose config differs is flagged.

use std::net::IpAddr;
use std::time::Duration;

use smarthostd::events::Kind;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_is_shown_side_by_side_and_a_stopped_one_as_unreachable() {
    let relays = Relays::start().await;
    let mut cluster = Cluster::start(3, &relays.toml()).await;
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.admin.to_string()).collect();
    // Each peer's view as of its last poll: at first, maybe from before its first probe round.
    eventually_within(Duration::from_secs(5), "every peer's verdicts", || async {
        let report = cluster_report(cluster.nodes[1].admin).await;
        (report.relays.iter()).all(|r| {
            r.views
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.verdict == "up"))
        })
    })
    .await;
    let report = cluster_report(cluster.nodes[1].admin).await;
    let shown: Vec<&str> = report.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(shown, [&names[1], &names[0], &names[2]]);
    assert_eq!(report.instances[0].state, "this");
    assert!(report.instances.iter().all(|i| !i.config_differs));
    let relay = &report.relays[0];
    assert_eq!(
        (relay.site.as_str(), relay.host.as_str()),
        ("oxford", "mail1")
    );
    assert!(!relay.disagree);
    assert!(
        relay
            .views
            .iter()
            .all(|v| v.as_ref().unwrap().verdict == "up")
    );
    let oxford = report.sites.iter().find(|s| s.site == "oxford").unwrap();
    assert!(!oxford.differ);
    let answer = oxford.answers[2].as_ref().unwrap();
    assert_eq!(answer.answer[0], "10 mail1.oxford.smarthost.internal.");
    // The command and the page show the same.
    let config = cluster.server(1).dir.path().join("smarthost.toml");
    let out = cli(&["status", "--cluster", "-c", config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for name in &names {
        assert!(text.contains(name.as_str()), "{name} missing:\n{text}");
    }
    assert!(
        text.contains("relays, as each instance sees them"),
        "{text}"
    );
    let (_, page) = http_status_and_body(cluster.nodes[1].admin, "/").await;
    assert!(
        page.contains("Relays, as each instance sees them"),
        "{page}"
    );
    assert!(page.contains(&names[2]));
    // A stopped instance is shown as such, with no verdicts.
    cluster.stop(2).await;
    let admin = cluster.nodes[1].admin;
    eventually_within(
        Duration::from_secs(5),
        "the stopped instance shown unreachable",
        || async {
            let report = cluster_report(admin).await;
            report.instances[2].state == "unreachable"
                && report.relays.iter().all(|r| r.views[2].is_none())
        },
    )
    .await;
    let out = cli(&["status", "--cluster", "-c", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("unreachable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_one_instance_can_reach_is_a_disagreement_with_an_event_and_a_metric() {
    let relays = Relays::start().await;
    // Instance 2 probes from 127.0.0.2, which oxford's mail2 refuses; the others probe from
    // 127.0.0.1 (the system's choice on loopback).
    let blocked: IpAddr = "127.0.0.2".parse().unwrap();
    relays.oxford[1].set_behavior(Behavior::RefuseFrom(blocked));
    let cluster = {
        let bound = Cluster::bind(3);
        let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
        let adjust = |i: usize, s: &mut Setup| {
            if i == 2 {
                s.probe.push_str("source_address = \"127.0.0.2\"\n");
            }
        };
        bound.start(|_| all.clone(), adjust, &relays.toml()).await
    };
    let (a, c) = (cluster.nodes[0].admin, cluster.nodes[2].admin);
    assert_eq!(cluster.server(2).mx(OXFORD).await, without_mail2());
    assert_eq!(cluster.server(0).mx(OXFORD).await, full());
    // Reported once it outlasts one probe interval plus two timeouts (here 0.2 s + 2 s).
    let mail2 = ["site=\"oxford\"", "host=\"mail2\""];
    eventually_within(
        Duration::from_secs(8),
        "the disagreement's metric",
        || async {
            metric(a, "smarthostd_peer_disagreements", &mail2).await == Some(1.0)
                && metric(c, "smarthostd_peer_disagreements", &mail2).await == Some(2.0)
        },
    )
    .await;
    let mail1 = ["site=\"oxford\"", "host=\"mail1\""];
    assert_eq!(
        metric(a, "smarthostd_peer_disagreements", &mail1).await,
        Some(0.0)
    );
    let events = cluster.server(0).control.events().list(&Default::default());
    let event = (events.iter())
        .find(|e| e.kind == Kind::Disagreement && e.to.as_deref() == Some("disagree"))
        .expect("a disagreement event");
    assert_eq!(
        (event.site.as_deref(), event.host.as_deref()),
        (Some("oxford"), Some("mail2"))
    );
    let reason = event.reason.as_deref().unwrap();
    assert!(reason.contains(&format!("{c}: down")), "{reason}");
    let report = cluster_report(a).await;
    let row = report.relays.iter().find(|r| r.host == "mail2").unwrap();
    assert!(row.disagree);
    assert_eq!(row.views[2].as_ref().unwrap().verdict, "down");
    assert!(row.views[2].as_ref().unwrap().reason.is_some());
    let oxford = report.sites.iter().find(|s| s.site == "oxford").unwrap();
    assert!(oxford.differ);
    // The same config everywhere: a machine's own source address does not count.
    assert!(report.instances.iter().all(|i| !i.config_differs));
    // The route is opened: they agree again, and that is an event too.
    relays.oxford[1].set_behavior(Behavior::Healthy);
    eventually_within(Duration::from_secs(8), "agreement again", || async {
        metric(a, "smarthostd_peer_disagreements", &mail2).await == Some(0.0)
    })
    .await;
    let events = cluster.server(0).control.events().list(&Default::default());
    assert!(
        events
            .iter()
            .any(|e| e.kind == Kind::Disagreement && e.to.as_deref() == Some("agree"))
    );
}

fn without_mail2() -> Vec<(u16, String)> {
    vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_config_differs_is_flagged() {
    let relays = Relays::start().await;
    let bound = Cluster::bind(2);
    let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
    let adjust = |i: usize, s: &mut Setup| {
        if i == 1 {
            s.zone = "degraded_ttl = \"5s\"\n".into();
        }
    };
    let cluster = bound.start(|_| all.clone(), adjust, &relays.toml()).await;
    let (a, b) = (cluster.nodes[0].admin, cluster.nodes[1].admin);
    eventually_within(
        Duration::from_secs(5),
        "the differing config flagged",
        || async {
            let report = cluster_report(a).await;
            report.instances[1].config_differs && !report.instances[0].config_differs
        },
    )
    .await;
    let peer = format!("peer=\"{b}\"");
    assert_eq!(
        metric(a, "smarthostd_peer_config_differs", &[&peer]).await,
        Some(1.0)
    );
    let config = cluster.server(0).dir.path().join("smarthost.toml");
    let out = cli(&["status", "--cluster", "-c", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DIFFERS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_pinned_key_file_differs_is_flagged_though_its_config_text_is_the_same() {
    use crate::fake_tls::{BOTH, MAIL1, Relay};

    let real = Relay::self_signed(&[MAIL1]);
    let other = Relay::self_signed(&[MAIL1]);
    let pinned = FakeSmtp::start(Behavior::Starttls(real.server(BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    // One config text for both; the key file beside it holds the relay's key on one machine
    // and another key on the other.
    let sites = format!(
        "[sites.oxford]\nhosts = [{}]\n[sites.cambridge]\nhosts = [{}]\n",
        pinned
            .host_entry("mail1")
            .replace(" }", ", tls_key = \"mail1.pem\" }"),
        cambridge.host_entry("mail1")
    );
    let dirs: Vec<tempfile::TempDir> = [&real, &other]
        .iter()
        .map(|key| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("mail1.pem"), key.pem()).unwrap();
            dir
        })
        .collect();
    let bound = Cluster::bind(2);
    let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
    let cluster = bound
        .start_in(dirs, |_| all.clone(), |_, _| {}, &sites)
        .await;
    let a = cluster.nodes[0].admin;
    eventually_within(
        Duration::from_secs(5),
        "the differing key flagged",
        || async {
            let report = cluster_report(a).await;
            report.instances[1].config_differs && !report.instances[0].config_differs
        },
    )
    .await;
    // What it is flagged for: the instance with the other key withdraws the relay.
    assert_eq!(
        cluster.server(0).mx(OXFORD).await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")]
    );
    assert_eq!(
        cluster.server(1).mx(OXFORD).await,
        vec![mx(20, "mail1.cambridge")]
    );
}
