//! What a drain's reply warns the operator of: a site left without a healthy local host, as the
//! answers published after the drain say it, with a blocklist demotion shaping them or before
//! any answer is published at all.

use std::time::Duration;

use smarthostd::answer::Mode;
use smarthostd::health::status::StatusReport;

use crate::blocklist::Blocklist;
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// `smarthostd drain HOST --admin ADMIN`, which must succeed: what it prints.
async fn drain(admin: std::net::SocketAddr, host: &str) -> String {
    let out = cli_off_runtime(&["drain", host, "--admin", &admin.to_string()]).await;
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_site_drained_of_its_relays_is_warned_of_only_when_none_is_left() {
    let list = Blocklist::start().await;
    list.set("7.100.51.198.bl.test.", "127.0.0.2", None);
    let relays = Relays::start().await;
    let sites = relays.toml().replace(
        "[sites.oxford]\n",
        "[sites.oxford]\negress = [\"198.51.100.7\"]\n",
    );
    let setup = Setup::new(format!(
        "{sites}[reputation]\nlists = [{{ zone = \"bl.test\", name = \"bl\" }}]\n\
         resolver = [\"{}\"]\ninterval = \"1s\"\ntimeout = \"300ms\"\naction = \"demote\"\nhold = \"1h\"\n",
        list.addr
    ));
    let server = TestServer::start(&setup).await;
    // Oxford's egress is listed: a clean site leads its name, its own relays right after.
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m == [
                mx(10, "mail1.cambridge"),
                mx(20, "mail1.oxford"),
                mx(20, "mail2.oxford"),
            ]
        })
        .await;

    // One relay drained: Oxford still has a healthy one of its own in its answer, led or not.
    assert_eq!(
        drain(server.admin, "oxford/mail1").await.trim(),
        "oxford/mail1 drained"
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.cambridge"), mx(20, "mail2.oxford")]
    );

    // The other drained too: none is left, and the reply says so as the answer now is.
    assert_eq!(
        drain(server.admin, "oxford/mail2").await.trim(),
        "oxford/mail2 drained; warning: site oxford has no healthy local host left: its answer now names only the fallback sites' hosts"
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    let status = server.control.status().await.unwrap();
    assert_eq!(status.sites[0].mode, Mode::RemoteOnly);
    assert!(status.sites[0].reputation.as_ref().unwrap().demoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_during_the_first_probe_round_warns_of_no_answer_not_yet_published() {
    // Oxford's mail2 greets late: the first round waits for it, and it is healthy after.
    let mail1 = FakeSmtp::start(Behavior::Healthy).await;
    let mail2 = FakeSmtp::start(Behavior::SlowGreeting(Duration::from_secs(5))).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
        mail1.host_entry("mail1"),
        mail2.host_entry("mail2"),
        cambridge.host_entry("mail1")
    ));
    setup.probe = "[probe]\ninterval = \"200ms\"\ntimeout = \"8s\"\n".into();
    let server = ServerProcess::spawn_in(&setup, tempfile::tempdir().unwrap(), None, false);

    let said = drain(server.admin, "oxford/mail1").await;
    let (ready, _) = http_status_and_body(server.admin, "/readyz").await;
    assert_eq!(ready, 503, "the drain was made during the first round");
    // Nothing is answered yet, and mail2 has not been judged: no warning can say what the
    // answers will be.
    assert_eq!(said.trim(), "oxford/mail1 drained");

    // The first answers, once published: mail2 leads them, as no warning said otherwise.
    let status = eventually("the first answers published", || async {
        let (_, body) = http_status_and_body(server.admin, "/status").await;
        let status: StatusReport =
            serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status.ready {
            Ok(status)
        } else {
            Err(format!("{:?}", status.sites[0].answer))
        }
    })
    .await;
    let answer: Vec<_> = status.sites[0]
        .answer
        .iter()
        .map(|m| (m.preference, m.exchange.clone()))
        .collect();
    assert_eq!(
        answer,
        vec![mx(10, "mail2.oxford"), mx(20, "mail1.cambridge")]
    );
    assert_eq!(status.sites[0].mode, Mode::Normal);
}
