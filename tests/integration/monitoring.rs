//! Monitoring: the shipped alert rules (`deploy/prometheus/alerts.yml`) and Grafana dashboard
//! (`deploy/grafana/smarthostd.json`) name only metrics the server exports, the standard process
//! metrics keep their standard names, and `smarthostd_ready` follows the first probe round.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::rr::RecordType;
use smarthostd::{dns, loaded, server};
use yaml_rust2::YamlLoader;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::promql::{Exported, metric_names};
use crate::support::*;

fn deploy_file(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `expr` of every rule in alerts.yml; each alert must also carry a severity, a summary and
/// a description.
fn alert_exprs() -> Vec<String> {
    let docs = YamlLoader::load_from_str(&deploy_file("prometheus/alerts.yml")).unwrap();
    let mut exprs = Vec::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("an alerting rule");
            assert!(
                ["critical", "warning"]
                    .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                "{name}: severity"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty()),
                    "{name}: {key}"
                );
            }
            exprs.push(rule["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

/// Every PromQL expression of the dashboard: panel targets (`expr`, at any depth, so that
/// panels inside collapsed rows count) and the queries of template variables.
fn dashboard_exprs() -> Vec<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("grafana/smarthostd.json")).expect("dashboard JSON");
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if var["type"] != "query" {
            continue;
        }
        let query = var["definition"].as_str().expect("a variable's definition");
        if let Some(args) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            && let Some((series, _label)) = args.rsplit_once(',')
        {
            exprs.push(series.to_string());
        } else if let Some(series) = query
            .strip_prefix("query_result(")
            .and_then(|q| q.strip_suffix(')'))
        {
            exprs.push(series.to_string());
        }
    }
    assert_eq!(
        dashboard["schemaVersion"].as_u64().map(|v| v >= 36),
        Some(true)
    );
    exprs
}

/// The value of an unlabelled sample.
fn value(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{scrape}"))
}

/// A server with every family populated: two sites, one with a warm share, an egress
/// address checked on a blocklist (asked of a loopback port where nothing answers) and a
/// relay pinned by a TLSA record, a cluster peer (a loopback port where nothing listens), and
/// some queries.
async fn scraped_server() -> (TestServer, String, FakeSmtp, FakeSmtp) {
    let pinned = crate::fake_tls::Relay::self_signed(&[crate::fake_tls::MAIL1]);
    let oxford = FakeSmtp::start(Behavior::Starttls(pinned.server(crate::fake_tls::BOTH))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sites = format!(
        "[sites.oxford]\nhosts = [{}]\nfallback = [\"cambridge\"]\nwarm_share = 0.5\n\
         egress = [\"198.51.100.7\"]\n\
         [sites.cambridge]\nhosts = [{}]\n\
         [reputation]\nlists = [{{ zone = \"bl.test\" }}]\nresolver = [\"{nobody}\"]\n\
         [cluster]\npeers = [\"{nobody}\"]\n",
        oxford
            .host_entry("mail1")
            .replace(" }", &format!(", tlsa = [\"{}\"] }}", pinned.record())),
        cambridge.host_entry("mail1")
    );
    let mut setup = Setup::new(sites);
    setup.server = "admin_token = \"monitoring-test-token\"\n".into();
    let server = TestServer::start(&setup).await;
    udp(server.dns, "oxford.smarthost.internal", RecordType::MX).await;
    udp(server.dns, "nope.smarthost.internal", RecordType::A).await;
    let (code, scrape) = http_status_and_body(server.admin, "/metrics").await;
    assert_eq!(code, 200);
    (server, scrape, oxford, cambridge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_name_only_exported_metrics() {
    let (_server, scrape, _oxford, _cambridge) = scraped_server().await;
    let exported = Exported::parse(&scrape);
    let alerts = alert_exprs();
    let dashboard = dashboard_exprs();
    // Enough of each that a parse going wrong (and finding nothing) cannot pass.
    assert!(alerts.len() >= 8, "{alerts:?}");
    assert!(dashboard.len() >= 25, "{dashboard:?}");
    let named: BTreeSet<String> = dashboard.iter().flat_map(|e| metric_names(e)).collect();
    assert!(named.len() >= 20, "{named:?}");
    for (source, exprs) in [("alerts.yml", &alerts), ("smarthostd.json", &dashboard)] {
        let missing = exported.missing(exprs);
        assert!(
            missing.is_empty(),
            "{source} names metrics the server does not export: {missing:#?}\nexported: {:#?}",
            exported.families.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_metrics_have_their_standard_names() {
    let (_server, scrape, _oxford, _cambridge) = scraped_server().await;
    assert!(value(&scrape, "process_open_fds") >= 3.0);
    assert!(value(&scrape, "process_max_fds") >= value(&scrape, "process_open_fds"));
    assert!(value(&scrape, "process_resident_memory_bytes") > 1e6);
    assert!(
        value(&scrape, "process_virtual_memory_bytes")
            >= value(&scrape, "process_resident_memory_bytes")
    );
    assert!(value(&scrape, "process_cpu_seconds_total") >= 0.0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&scrape, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 86_400.0,
        "started {started}, now {now}"
    );
    assert!(value(&scrape, "smarthostd_runtime_alive_tasks") >= 1.0);
    assert!(
        !scrape.contains("smarthostd_process_"),
        "prefixed process metrics are still there:\n{scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_0_during_the_first_probe_round_and_1_after() {
    // A relay that accepts and never greets holds the first round for its whole timeout.
    let silent = FakeSmtp::start(Behavior::Silent).await;
    let sites = format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {}, timeout = \"4s\" }}]\n",
        silent.addr.ip(),
        silent.addr.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smarthost.toml");
    std::fs::write(&path, Setup::new(sites).render()).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let loaded = loaded::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let sockets = dns::bind::bind(&loaded.config.server.listen, 1).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let admin = listener.local_addr().unwrap();
    let start = Instant::now();
    let listeners = server::AdminListeners {
        tcp: Some(listener),
        control: None,
    };
    let running = server::start(loaded, sockets, listeners).await.unwrap();

    let (code, body) = http_status_and_body(admin, "/readyz").await;
    let (_, scrape) = http_status_and_body(admin, "/metrics").await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the first round ended within {:?}",
        start.elapsed()
    );
    assert_eq!(
        (code, body.as_str()),
        (503, "first probe round in progress\n")
    );
    assert_eq!(value(&scrape, "smarthostd_ready"), 0.0);

    let ready = tokio::time::timeout(DEADLINE, running.ready())
        .await
        .expect("the first round ends");
    assert!(ready);
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(http_status_and_body(admin, "/readyz").await.0, 200);
    assert_eq!(
        value(
            &http_status_and_body(admin, "/metrics").await.1,
            "smarthostd_ready"
        ),
        1.0
    );
    running.stop().await;
}
