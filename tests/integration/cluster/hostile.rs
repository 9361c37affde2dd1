//! Peers that should change nothing: one with another token, one that cannot prove it holds
//! the token (anything else answering at a listed address), one that hangs, one whose words
//! carry control characters; forged, malformed and replayed requests to `/cluster/...`.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use smarthostd::admin::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// One instance of `relays`' sites whose cluster lists `others` beside itself.
async fn beside(relays: &Relays, others: &[String]) -> Cluster {
    let bound = Cluster::bind(1);
    let mut peers = vec![bound.admins[0].to_string()];
    peers.extend_from_slice(others);
    bound
        .start(|_| peers.clone(), |_, _| {}, &relays.toml())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_token_is_refused_and_changes_nothing() {
    let relays = Relays::start().await;
    let bound = Cluster::bind(3);
    let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
    let adjust = |i: usize, s: &mut Setup| {
        if i == 2 {
            s.server = "admin_token = \"not-the-shared-one\"\n".into();
        }
    };
    let cluster = bound.start(|_| all.clone(), adjust, &relays.toml()).await;
    let (a, c) = (cluster.nodes[0].admin, cluster.nodes[2].admin);
    // Its drain reaches no one, and the command says so.
    let config = cluster.server(2).dir.path().join("smarthost.toml");
    let out = cli(&["drain", "oxford/mail1", "-c", config.to_str().unwrap()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("refused") && stderr.contains("will not get"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-shared-one") && !stderr.contains(TOKEN),
        "{stderr}"
    );
    // Nor does a drain made elsewhere reach it.
    let (_, result) = act(a, "/hosts/oxford/mail2/drain", TOKEN).await;
    assert_eq!(result.instances[2].result, Outcome::Refused, "{result:?}");
    assert_eq!(result.instances[1].result, Outcome::Applied, "{result:?}");
    // The polls change nothing either way: the answers stay as each instance made them.
    eventually_within(
        Duration::from_secs(5),
        "the refusing peer shown refused",
        || async {
            cluster_report(a).await.instances[2].state == "refused"
                && cluster_report(c).await.instances[1].state == "refused"
        },
    )
    .await;
    let mail2_only = vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")];
    assert_eq!(cluster.server(0).mx(OXFORD).await, mail2_only);
    assert_eq!(cluster.server(1).mx(OXFORD).await, mail2_only);
    assert_eq!(cluster.server(2).mx(OXFORD).await, without_mail1());
    let (_, body) = http_status_and_body(a, "/status?cluster=1").await;
    assert!(!body.contains(TOKEN) && !body.contains("not-the-shared-one"));
}

/// A listener at a peer's address that answers `/cluster/view` and `/cluster/drains` as a
/// peer would, but without proof: it does not hold the token. It offers a drain of mail1.
async fn impostor() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let body = if text.starts_with("GET /cluster/view") {
                    format!(
                        "{{\"instance\":\"{addr}\",\"fingerprint\":\"{f}\",\"drains\":\"{f}\",\
                         \"ready\":true,\"relays\":[],\"sites\":[]}}",
                        f = "0".repeat(64)
                    )
                } else {
                    // A drain stamped now, which would win were it proven.
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis();
                    format!("oxford/mail1 stamp={now}.0@evil\n")
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Smarthostd-Proof: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len(),
                    "ab".repeat(32)
                );
                let _ = s.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_cannot_prove_it_holds_the_token_changes_nothing() {
    let relays = Relays::start().await;
    let (fake, task) = impostor().await;
    let cluster = beside(&relays, &[fake.to_string()]).await;
    let a = cluster.nodes[0].admin;
    eventually_within(
        Duration::from_secs(5),
        "the impostor shown refused",
        || async {
            let report = cluster_report(a).await;
            report.instances[1].state == "refused"
                && report.instances[1]
                    .problem
                    .as_deref()
                    .is_some_and(|p| p.contains("prove"))
        },
    )
    .await;
    assert_eq!(cluster.server(0).mx(OXFORD).await, full());
    let (_, drains) = http_status_and_body(a, "/drains").await;
    assert_eq!(drains.trim(), "[]", "{drains}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_peer_gone_or_hung_an_instance_answers_and_acts_alone() {
    let relays = Relays::start().await;
    // One peer accepts connections and never answers; one is a port where nothing listens.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let others = [hung.local_addr().unwrap().to_string(), gone.to_string()];
    let cluster = beside(&relays, &others).await;
    let server = cluster.server(0);
    let asked = Instant::now();
    let drain = tokio::spawn(act(
        cluster.nodes[0].admin,
        "/hosts/oxford/mail1/drain",
        TOKEN,
    ));
    // While the reply waits on the hung peer, the drain is already in the answers.
    eventually_within(
        Duration::from_secs(2),
        "the drain in the answers",
        || async { mx_set(&udp(server.dns, OXFORD, RecordType::MX).await) == without_mail1() },
    )
    .await;
    assert!(
        !drain.is_finished(),
        "the reply waits for the peers, within bounds"
    );
    let (code, result) = drain.await.unwrap();
    let took = asked.elapsed();
    assert_eq!(code, 200);
    assert!(
        took < Duration::from_secs(4),
        "{took:?}: bounded by the peer request timeout"
    );
    let outcomes: Vec<&Outcome> = result.instances.iter().map(|d| &d.result).collect();
    assert_eq!(
        outcomes,
        [
            &Outcome::Applied,
            &Outcome::Unreachable,
            &Outcome::Unreachable
        ],
        "{result:?}"
    );
    // Probes go on as alone: a relay that dies leaves the answer.
    let mut relays = relays;
    relays.oxford[1].stop();
    eventually_within(Duration::from_secs(5), "a dead relay withdrawn", || async {
        server.mx(OXFORD).await == vec![mx(20, "mail1.cambridge")]
    })
    .await;
    drop(hung);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_replayed_peer_requests_change_nothing() {
    let relays = Relays::start().await;
    let cluster = Cluster::start(2, &relays.toml()).await;
    let (a, b) = (cluster.nodes[0].admin, cluster.nodes[1].admin);
    let send = |method: &str, path: &str, headers: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {b}\r\nX-Smarthostd-Request: 1\r\n{headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let nonce = "0123456789abcdef0123456789abcdef";
    let token = format!("Authorization: Bearer {TOKEN}\r\nX-Smarthostd-Nonce: {nonce}\r\n");
    let drain = "oxford/mail1 stamp=1700000000000.0@127.0.0.1:1\n";
    for (request, want) in [
        (send("POST", "/cluster/drains", "", drain), 401),
        (
            send(
                "POST",
                "/cluster/drains",
                "Authorization: Bearer wrong\r\n",
                drain,
            ),
            401,
        ),
        (send("GET", "/cluster/view", "", ""), 401),
        (
            send(
                "GET",
                "/cluster/drains",
                &format!("Authorization: Bearer {TOKEN}\r\n"),
                "",
            ),
            400,
        ),
        (
            send(
                "POST",
                "/cluster/drains",
                &token,
                "oxford/mail1\nnot a line\n",
            ),
            400,
        ),
        (send("POST", "/cluster/reload", &token, "soon"), 400),
        (
            send(
                "POST",
                "/cluster/drains",
                &format!("{token}Origin: http://evil.example\r\n"),
                drain,
            ),
            403,
        ),
    ] {
        let (status, body) = http_raw(b, &request).await;
        assert_eq!(status, want, "{request}\n{body}");
    }
    assert_eq!(cluster.server(1).mx(OXFORD).await, full());
    // A forwarded reload from before this instance started is not done again.
    let (status, body) = http_raw(b, &send("POST", "/cluster/reload", &token, "1.0@x")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("already reloaded"), "{body}");
    // A real change, then an older one sent again (a replay): the newer stands.
    act(a, "/hosts/oxford/mail1/drain", TOKEN).await;
    let old = std::fs::read_to_string(cluster.server(0).dir.path().join("drained-hosts")).unwrap();
    act(a, "/hosts/oxford/mail1/undrain", TOKEN).await;
    let (status, body) = http_raw(b, &send("POST", "/cluster/drains", &token, &old)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("0 changed"), "{body}");
    assert_eq!(cluster.server(1).mx(OXFORD).await, full());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_floods_its_answer_is_cut_off_at_the_bound() {
    let relays = Relays::start().await;
    // Answers every request with headers, then data without end.
    let flood = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = flood.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = flood.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    let cluster = beside(&relays, &[addr.to_string()]).await;
    let a = cluster.nodes[0].admin;
    eventually_within(
        Duration::from_secs(10),
        "the flooding peer shown unreachable",
        || async {
            let report = cluster_report(a).await;
            report.instances[1].state == "unreachable"
                && report.instances[1]
                    .problem
                    .as_deref()
                    .is_some_and(|p| p.contains("MiB"))
        },
    )
    .await;
    // The answer was read up to the bound (8 MiB), then dropped: the problem names the bound.
    assert_eq!(cluster.server(0).mx(OXFORD).await, full());
    task.abort();
}

/// A listener at a peer's address that holds the token and proves it, answering every request
/// with `body` (a JSON view): an instance of the cluster gone bad.
async fn proven_peer(body: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use smarthostd::cluster::proof;
    use smarthostd::config::AdminToken;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let nonce = (text.lines())
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("x-smarthostd-nonce")
                            .then(|| value.trim())
                    })
                    .unwrap_or_default()
                    .to_string();
                let signed = proof::sign(&AdminToken::new(TOKEN), &nonce, 200, body.as_bytes());
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     X-Smarthostd-Proof: {signed}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_sends_control_characters_is_shown_with_them_escaped() {
    let relays = Relays::start().await;
    // A view the parser refuses, quoting the peer's own text: a mode that forges a log line,
    // clears a terminal and turns text around.
    let forged = "\\r\\n2026-01-01T00:00:00Z  WARN smarthostd: FORGED\\u001b[2J\\u202e";
    let view = format!(
        "{{\"instance\":\"127.0.0.1:1\",\"fingerprint\":\"{f}\",\"drains\":\"{f}\",\"ready\":true,\
         \"relays\":[],\"sites\":[{{\"site\":\"oxford\",\"mode\":\"{forged}\",\"answer\":[]}}]}}",
        f = "0".repeat(64)
    );
    let (fake, task) = proven_peer(view).await;
    let cluster = beside(&relays, &[fake.to_string()]).await;
    let a = cluster.nodes[0].admin;
    let problem = || async { cluster_report(a).await.instances[1].problem.clone() };
    eventually_within(
        Duration::from_secs(5),
        "the peer's refused view shown",
        || async { problem().await.is_some_and(|p| p.contains("FORGED")) },
    )
    .await;
    let problem = problem().await.unwrap();
    assert!(
        !problem.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{problem:?}"
    );
    assert!(
        problem.contains("\\r\\n") && problem.contains("\\u{1b}"),
        "{problem}"
    );
    assert_eq!(cluster.server(0).mx(OXFORD).await, full());
    task.abort();
}
