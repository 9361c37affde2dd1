//! The admin API and the CLI around it: status, page, metrics, drain, reload, explain.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use smarthostd::health::status::StatusReport;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// An HTTP request with ureq (blocking, so off the runtime's threads).
async fn http(method: &'static str, url: String, token: Option<&str>) -> (u16, String) {
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = match method {
            "GET" => agent.get(&url).call().unwrap(),
            _ => {
                // What the CLI sends: a web page cannot.
                let mut r = agent.post(&url).header("X-Smarthostd-Request", "1");
                if let Some(t) = &token {
                    r = r.header("Authorization", format!("Bearer {t}"));
                }
                r.send_empty().unwrap()
            }
        };
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

async fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    http("GET", format!("http://{admin}{path}"), None).await
}

async fn post(admin: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http("POST", format!("http://{admin}{path}"), token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_and_page_show_sites_hosts_and_answers() {
    let mut relays = Relays::start().await;
    relays.oxford[1].stop();
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let (code, body) = get(server.admin, "/status").await;
    assert_eq!(code, 200);
    let status: StatusReport = serde_json::from_str(&body).unwrap();
    assert!(status.ready);
    assert!(status.generation >= 1);
    let oxford = &status.sites[0];
    assert_eq!(oxford.name, "oxford");
    assert_eq!(oxford.hosts[0].state, "up");
    assert_eq!(oxford.hosts[1].state, "down");
    assert_eq!(
        oxford.hosts[1].addresses[0].reason.as_deref(),
        Some("connection refused")
    );
    assert!(oxford.hosts[0].addresses[0].latency_ms.is_some());
    assert!(oxford.hosts[0].addresses[0].last_probe.is_some());
    let answer: Vec<(u16, &str)> = oxford
        .answer
        .iter()
        .map(|m| (m.preference, m.exchange.as_str()))
        .collect();
    assert_eq!(
        answer,
        vec![
            (10, "mail1.oxford.smarthost.internal."),
            (20, "mail1.cambridge.smarthost.internal.")
        ]
    );

    let (code, page) = get(server.admin, "/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("<meta http-equiv=\"refresh\""),
        "the page refreshes itself"
    );
    assert!(page.contains("class=\"host up\"><span class=\"name\">mail1"));
    assert!(page.contains("class=\"host down\"><span class=\"name\">mail2"));
    assert!(page.contains("connection refused"));
    assert!(page.contains("mail1.cambridge.smarthost.internal."));

    assert_eq!(get(server.admin, "/healthz").await.0, 200);
    assert_eq!(get(server.admin, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_the_documented_names() {
    let relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    for _ in 0..3 {
        udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    }
    udp(server.dns, "nope.smarthost.internal", RecordType::A).await;
    let (code, body) = get(server.admin, "/metrics").await;
    assert_eq!(code, 200);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let names: std::collections::HashSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for name in [
        "smarthostd_dns_queries_total",
        "smarthostd_dns_answer_duration_seconds",
        "smarthostd_probe_results_total",
        "smarthostd_probe_duration_seconds",
        "smarthostd_host_up",
        "smarthostd_transitions_total",
        "smarthostd_snapshot_generation",
        "smarthostd_build_info",
        "smarthostd_site_answer_mode",
    ] {
        assert!(names.contains(name), "{name} missing from:\n{body}");
    }
    let mx_noerror = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "smarthostd_dns_queries_total"
                && s.labels.get("qtype") == Some("MX")
                && s.labels.get("rcode") == Some("NOERROR")
        })
        .expect("MX NOERROR counted");
    let count = match mx_noerror.value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{other:?}"),
    };
    assert!(count >= 3.0, "{count}");
    assert!(body.contains("rcode=\"NXDOMAIN\""));
    // Every answered query is timed once, also when a UDP batch shares one clock reading.
    let answered: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "smarthostd_dns_queries_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{other:?}"),
        })
        .sum();
    let timed = body
        .lines()
        .find_map(|l| l.strip_prefix("smarthostd_dns_answer_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("the duration histogram's count");
    assert!(answered >= 4.0, "{answered}");
    assert_eq!(timed, answered);
    // A reload is counted, whatever its result.
    assert_eq!(post(server.admin, "/reload", None).await.0, 200);
    assert!(
        get(server.admin, "/metrics")
            .await
            .1
            .contains("smarthostd_config_reloads_total{result=\"ok\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_undrain_change_the_answer_and_survive_a_restart() {
    let relays = Relays::start().await;
    let setup = Setup::new(relays.toml());
    let server = TestServer::start(&setup).await;
    let (code, body) = post(server.admin, "/hosts/oxford/mail1/drain", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail2.oxford"), mx(20, "mail1.cambridge")]
    );
    let (code, body) = post(server.admin, "/hosts/oxford/nosuch/drain", None).await;
    assert_eq!(code, 404, "{body}");
    // Draining the last local host is allowed, with a warning that explains the fallback.
    let (code, body) = post(server.admin, "/hosts/oxford/mail2/drain", None).await;
    assert_eq!(code, 200);
    assert!(
        body.contains("warning") && body.contains("fallback"),
        "{body}"
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    assert_eq!(
        post(server.admin, "/hosts/oxford/mail2/undrain", None)
            .await
            .0,
        200
    );

    // Restart in the same folder: the drain of mail1 is remembered.
    let dir = server.stop().await;
    let server = TestServer::start_in(&setup, dir).await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail2.oxford"), mx(20, "mail1.cambridge")]
    );
    let status = server.control.status().await.unwrap();
    assert_eq!(status.sites[0].hosts[0].state, "drained");
    assert_eq!(
        post(server.admin, "/hosts/oxford/mail1/undrain", None)
            .await
            .0,
        200
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_mutating_endpoints() {
    let relays = Relays::start().await;
    let mut setup = Setup::new(relays.toml());
    setup.server = "admin_token = \"s3cret\"".into();
    let server = TestServer::start(&setup).await;
    assert_eq!(post(server.admin, "/reload", None).await.0, 401);
    assert_eq!(
        post(server.admin, "/hosts/oxford/mail1/drain", Some("wrong"))
            .await
            .0,
        401
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await.len(),
        3,
        "nothing drained"
    );
    assert_eq!(
        post(server.admin, "/hosts/oxford/mail1/drain", Some("s3cret"))
            .await
            .0,
        200
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 2);
    // Reading needs no token.
    assert_eq!(get(server.admin, "/status").await.0, 200);
}

#[test]
fn a_non_loopback_admin_listener_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Setup::new("[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.0.1\"] }]\n")
            .render()
            .replace("admin = \"127.0.0.1:0\"", "admin = \"0.0.0.0:0\"");
    std::fs::write(dir.path().join("smarthost.toml"), config).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smarthostd"))
        .args(["serve", "--config"])
        .arg(dir.path().join("smarthost.toml"))
        .env_remove(smarthostd::admin::TOKEN_ENV)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a config error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not on loopback") && stderr.contains("admin_token"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_keeps_the_answers_and_is_counted() {
    let relays = Relays::start().await;
    let setup = Setup::new(relays.toml());
    let server = TestServer::start(&setup).await;
    let before = server.mx("oxford.smarthost.internal").await;
    let mut bad = Setup::new(relays.toml_with(&[("oxford", "fallback = [\"nowhere\"]")]));
    bad.zone = String::new();
    server.rewrite(&bad);
    let (code, body) = post(server.admin, "/reload", None).await;
    assert_eq!(code, 422);
    assert!(
        body.contains("smarthost.toml:") && body.contains("unknown site \\\"nowhere\\\""),
        "{body}"
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await, before);
    let metrics = get(server.admin, "/metrics").await.1;
    assert!(
        metrics.contains("smarthostd_config_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_a_host_probes_it_before_serving_it() {
    let relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let generation = server.control.status().await.unwrap().generation;
    let new_live = FakeSmtp::start(Behavior::Healthy).await;
    let new_dead = FakeSmtp::closed().await;
    let more = relays.toml().replace(
        "[sites.cambridge]",
        &format!(
            "[sites.london]\nhosts = [{}, {{ name = \"mail2\", addresses = [\"{}\"], port = {} }}]\n[sites.cambridge]",
            new_live.host_entry("mail1"),
            new_dead.ip(),
            new_dead.port()
        ),
    );
    server.rewrite(&Setup::new(more));
    let (code, body) = post(server.admin, "/reload", None).await;
    assert_eq!(code, 200, "{body}");
    // The dead new host is never served: every generation after the reload knows it is down.
    let london = server
        .wait_mx("london.smarthost.internal", |m| {
            !m.is_empty() && m[0].0 == 10
        })
        .await;
    assert_eq!(london[0], mx(10, "mail1.london"));
    assert!(!london.contains(&mx(10, "mail2.london")));
    let oxford = server.mx("oxford.smarthost.internal").await;
    assert!(oxford.contains(&mx(20, "mail1.london")) && !oxford.contains(&mx(20, "mail2.london")));
    let status = server.control.status().await.unwrap();
    assert!(status.generation > generation);
    assert_eq!(
        status.sites[0].hosts[0].state, "up",
        "hosts that stay keep their state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_order_an_mta_tries_hosts() {
    let relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let dns = server.dns;
    let e = smarthostd::cli::explain("oxford.smarthost.internal", Some(dns), None)
        .await
        .unwrap();
    assert_eq!(e.groups.len(), 2);
    assert_eq!(e.groups[0].preference, 10);
    assert_eq!(e.groups[0].exchanges.len(), 2);
    assert_eq!(e.groups[0].exchanges[0].1, vec![relays.oxford[0].addr.ip()]);
    assert_eq!(
        e.groups[1].exchanges[0].0,
        "mail1.cambridge.smarthost.internal."
    );
    assert!(e.warnings.is_empty());
    // The same through the binary.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_smarthostd"))
            .args([
                "explain",
                "oxford.smarthost.internal",
                "--server",
                &dns.to_string(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("preference 10") && text.contains("rotates"),
        "{text}"
    );
    assert!(
        text.contains("3. mail1.cambridge.smarthost.internal."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_speaks_for_each_mta() {
    use smarthostd::cli::Mta;
    let mut relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let dns = server.dns;
    let site = "oxford.smarthost.internal";
    // An A-only MTA gets the site's own addresses: Oxford's relays while they are up.
    let e = smarthostd::cli::explain(site, Some(dns), Some(Mta::Opensmtpd))
        .await
        .unwrap();
    assert!(e.groups.is_empty(), "no MX lookup");
    let mut want = vec![relays.oxford[0].addr.ip(), relays.oxford[1].addr.ip()];
    want.sort();
    let mut got = e.implicit.clone();
    got.sort();
    assert_eq!(got, want);
    // ... and Cambridge's once they are gone, as an MX-first MTA would.
    relays.oxford[0].stop();
    relays.oxford[1].stop();
    server
        .wait_mx(site, |m| m.iter().all(|(p, _)| *p == 20))
        .await;
    let e = smarthostd::cli::explain(site, Some(dns), Some(Mta::PostfixBracket))
        .await
        .unwrap();
    assert_eq!(e.implicit, vec![relays.cambridge[0].addr.ip()]);
    let run = move |mta: &'static str| {
        let out = Command::new(env!("CARGO_BIN_EXE_smarthostd"))
            .args(["explain", site, "--server", &dns.to_string(), "--mta", mta])
            .output()
            .unwrap();
        assert!(out.status.success(), "{mta}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (bracket, exim, exchange) = tokio::task::spawn_blocking(move || {
        (run("postfix-bracket"), run("exim-mx"), run("exchange"))
    })
    .await
    .unwrap();
    assert!(
        bracket.contains("relayhost = [oxford.smarthost.internal]") && bracket.contains("no MX"),
        "{bracket}"
    );
    assert!(
        exim.contains("route_list = * oxford.smarthost.internal/MX")
            && exim.contains("hosts_max_try = 5"),
        "{exim}"
    );
    assert!(
        exchange.contains("-SmartHosts oxford.smarthost.internal") && exchange.contains("MX first"),
        "{exchange}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_the_admin_api() {
    let relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let admin = server.admin.to_string();
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_smarthostd"))
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let out = run(vec![
        "drain".into(),
        "oxford/mail2".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 2);
    let out = run(vec!["status".into(), "--admin".into(), admin.clone()]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("SITE") && table.contains("drained ("),
        "{table}"
    );
    let out = run(vec![
        "undrain".into(),
        "oxford/mail2".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert!(out.status.success());
    let out = run(vec![
        "drain".into(),
        "nosuch".into(),
        "--admin".into(),
        admin,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "bad usage");
}
