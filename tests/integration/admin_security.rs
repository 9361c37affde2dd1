//! The admin API against a hostile web page: cross-site requests (CSRF) and DNS rebinding,
//! sent byte for byte as a browser would, over a real TCP connection.

use std::net::SocketAddr;

use smarthostd::admin::ActionResult;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// Oxford's relay at 10 and Cambridge's at 20, as long as `oxford/mail1` is not drained.
async fn server_with(server_keys: &str) -> (TestServer, FakeSmtp, FakeSmtp) {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(two_sites(&oxford, &cambridge));
    setup.server = server_keys.to_string();
    let server = TestServer::start(&setup).await;
    (server, oxford, cambridge)
}

/// Nothing was drained: the DNS answer still leads with Oxford's relay, and the drained-hosts
/// file (if any) does not name it.
async fn assert_nothing_drained(server: &TestServer) {
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")],
        "the answer changed"
    );
    let file = std::fs::read_to_string(server.dir.path().join("drained-hosts")).unwrap_or_default();
    assert!(!file.contains("oxford/mail1"), "saved: {file}");
}

/// Reloads the server has done, as its metrics count them.
async fn reloads(admin: SocketAddr) -> String {
    let (_, metrics) = http_status_and_body(admin, "/metrics").await;
    metrics
        .lines()
        .filter(|l| l.starts_with("smarthostd_config_reloads_total{result=\"ok\"}"))
        .collect()
}

fn action(body: &str) -> ActionResult {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_drain_or_reload_and_the_cli_can() {
    let (server, _oxford, _cambridge) = server_with("").await;
    let admin = server.admin;
    let before = reloads(admin).await;
    // The attack as a page sends it: a "simple" request that needs no preflight.
    let attack = format!(
        "POST /hosts/oxford/mail1/drain?for=2h HTTP/1.1\r\nHost: {admin}\r\n\
         Content-Type: text/plain\r\nOrigin: http://evil.example\r\n\
         Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    let (code, body) = http_raw(admin, &attack).await;
    assert_eq!(code, 403, "{body}");
    let refused = action(&body);
    assert!(
        !refused.ok && refused.message.contains("Sec-Fetch-Site"),
        "{body}"
    );
    // A plain HTML form, from a browser that sends neither Origin nor Fetch Metadata.
    let form = format!(
        "POST /hosts/oxford/mail1/drain HTTP/1.1\r\nHost: {admin}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\
         Connection: close\r\n\r\na=b"
    );
    let (code, body) = http_raw(admin, &form).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        action(&body).message.contains("X-Smarthostd-Request"),
        "{body}"
    );
    // An Origin that is not the listener's, with or without the custom header.
    for extra in ["", "X-Smarthostd-Request: 1\r\n"] {
        let reload = format!(
            "POST /reload HTTP/1.1\r\nHost: {admin}\r\nContent-Type: text/plain\r\n\
             Origin: http://evil.example\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (code, body) = http_raw(admin, &reload).await;
        assert_eq!(code, 403, "{body}");
        assert!(action(&body).message.contains("Origin"), "{body}");
    }
    let reload = format!(
        "POST /reload HTTP/1.1\r\nHost: {admin}\r\nContent-Type: text/plain\r\n\
         Sec-Fetch-Site: cross-site\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http_raw(admin, &reload).await.0, 403);
    assert_nothing_drained(&server).await;
    assert_eq!(reloads(admin).await, before, "a reload ran");

    // The CLI's way works, and what it did is saved.
    let out = tokio::task::spawn_blocking(move || {
        cli(&[
            "drain",
            "oxford/mail1",
            "--for",
            "2h",
            "--admin",
            &admin.to_string(),
        ])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    let file = std::fs::read_to_string(server.dir.path().join("drained-hosts")).unwrap();
    assert!(file.contains("oxford/mail1 until="), "{file}");
    let out = tokio::task::spawn_blocking(move || cli(&["reload", "--admin", &admin.to_string()]))
        .await
        .unwrap();
    assert!(out.status.success());
    assert_ne!(reloads(admin).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_name_reads_nothing_and_changes_nothing() {
    for token in [None, Some("s3cret")] {
        let keys = token.map_or(String::new(), |t| format!("admin_token = \"{t}\""));
        let (server, _oxford, _cambridge) = server_with(&keys).await;
        let admin = server.admin;
        let host = format!("evil.example:{}", admin.port());
        for path in ["/status", "/events", "/metrics", "/", "/drains", "/healthz"] {
            let get = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let (code, body) = http_raw(admin, &get).await;
            assert_eq!(code, 421, "{path}: {body}");
            assert!(
                body.contains("server.admin_hosts") && !body.contains("oxford"),
                "{path}: {body}"
            );
        }
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let drain = format!(
            "POST /hosts/oxford/mail1/drain HTTP/1.1\r\nHost: {host}\r\n\
             X-Smarthostd-Request: 1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(http_raw(admin, &drain).await.0, 421, "token {token:?}");
        assert_nothing_drained(&server).await;
        // The same request with the listener's own address is served.
        let own = drain.replace(&host, &admin.to_string());
        let (code, body) = http_raw(admin, &own).await;
        assert_eq!(code, 200, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listeners_names_are_served_and_admin_hosts_takes_effect_on_reload() {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(two_sites(&oxford, &cambridge));
    let server = TestServer::start(&setup).await;
    let admin = server.admin;
    let get =
        |host: String| format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    // Its address, and localhost through a tunnel's port, in any letter case.
    for host in [
        admin.to_string(),
        "127.0.0.1".to_string(),
        "localhost:9000".to_string(),
        "LocalHost.".to_string(),
    ] {
        assert_eq!(http_raw(admin, &get(host.clone())).await.0, 200, "{host}");
    }
    let proxy = "smarthostd.example.org".to_string();
    assert_eq!(http_raw(admin, &get(proxy.clone())).await.0, 421);
    assert_eq!(http_raw(admin, &get("127.0.0.2:8053".into())).await.0, 421);
    setup.server = "admin_hosts = [\"SmartHostd.Example.org.\"]".into();
    server.rewrite(&setup);
    server.control.reload().await.unwrap();
    assert_eq!(http_raw(admin, &get(proxy)).await.0, 200);
    assert_eq!(
        http_raw(admin, &get("SMARTHOSTD.example.org:443".into()))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_scrape_by_address_is_served() {
    let (server, _oxford, _cambridge) = server_with("admin_token = \"s3cret\"").await;
    let admin = server.admin;
    // What Prometheus 2 sends for `targets: ["127.0.0.1:PORT"]`.
    let scrape = format!(
        "GET /metrics HTTP/1.1\r\nHost: {admin}\r\nUser-Agent: Prometheus/2.53.0\r\n\
         Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\
         Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\
         Connection: close\r\n\r\n"
    );
    let (code, body) = http_raw(admin, &scrape).await;
    assert_eq!(code, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
    assert!(
        parsed
            .samples
            .iter()
            .any(|s| s.metric == "smarthostd_ready"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repeated_and_smuggled_hosts_are_refused() {
    let (server, _oxford, _cambridge) = server_with("").await;
    let admin = server.admin;
    let before = reloads(admin).await;
    for (request, want) in [
        (
            "GET /status HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
            400,
        ),
        (
            format!(
                "GET /status HTTP/1.1\r\nHost: {admin}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            ),
            400,
        ),
        (
            "GET /status HTTP/1.1\r\nHost: evil.example@127.0.0.1\r\nConnection: close\r\n\r\n"
                .to_string(),
            400,
        ),
        (
            format!(
                "POST http://evil.example/reload HTTP/1.1\r\nHost: {admin}\r\n\
                 X-Smarthostd-Request: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
            400,
        ),
        (
            "POST http://evil.example/reload HTTP/1.1\r\nHost: evil.example\r\n\
             X-Smarthostd-Request: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string(),
            421,
        ),
    ] {
        let (code, body) = http_raw(admin, &request).await;
        assert_eq!(code, want, "{request:?}: {body}");
    }
    assert_eq!(reloads(admin).await, before, "a reload ran");
    // HTTP/1.0 has no Host to require.
    let (code, _) = http_raw(admin, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_path_carries_no_control_character_into_the_reply() {
    let (server, _oxford, _cambridge) = server_with("").await;
    let admin = server.admin;
    // Percent-encoded CR, LF and ESC in the site's name: axum decodes them into the path values.
    let request = format!(
        "POST /hosts/ox%0D%0Aforged%1B%5B2J/mail1/drain HTTP/1.1\r\nHost: {admin}\r\n\
         X-Smarthostd-Request: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (code, body) = http_raw(admin, &request).await;
    assert_eq!(code, 404, "{body}");
    let refused = action(&body);
    assert!(
        refused.message.contains("ox\\r\\nforged\\u{1b}[2J/mail1"),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.chars().any(char::is_control),
        "{:?}",
        refused.message
    );
    assert_nothing_drained(&server).await;
}
