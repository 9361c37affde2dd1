//! A hurried administrator: reloads in storms, the CLI run from the wrong folder, two
//! instances in one state directory, damaged state files, signals during start-up, relay text
//! on a terminal. Each must end in what the operator meant, or in a clear refusal.

use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use smarthostd::state::drains::Drain;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// Oxford's relays and the first `cambridge` of Cambridge's.
fn with_cambridge(relays: &Relays, cambridge: usize) -> String {
    site_table("oxford", &relays.oxford, "")
        + &site_table("cambridge", &relays.cambridge[..cambridge], "")
}

/// The series counting reloads that were applied.
const RELOADS_OK: &str = "smarthostd_config_reloads_total{result=\"ok\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_reloads_does_not_delay_a_withdrawal() {
    let mut four = Relays::sites(2, 2, 0).await;
    let mut setup = Setup::new(four.toml());
    let server = TestServer::start(&setup).await;
    assert_eq!(
        server.control.reload().await.unwrap(),
        "configuration unchanged: nothing to do"
    );

    // Reload every 100 ms with a config that really changed (a comment), until the withdrawal
    // has been seen (at most 100 times).
    let control = server.control.clone();
    let dir = server.dir.path().to_path_buf();
    let base = setup.render();
    let calm = tokio_util::sync::CancellationToken::new();
    let storm = tokio::spawn({
        let calm = calm.clone();
        async move {
            let mut outcomes = Vec::new();
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            for i in 0..100 {
                tokio::select! {
                    () = calm.cancelled() => break,
                    _ = pace.tick() => {}
                }
                let config = format!("# reload {i}\n{base}");
                std::fs::write(dir.join("smarthost.toml"), config).unwrap();
                outcomes.push(control.reload().await.unwrap());
            }
            outcomes
        }
    });
    // The storm is on: the server has applied reloads of it.
    let reloads = || sample(&server.control.metrics.encode(), RELOADS_OK).unwrap_or(0.0);
    let before = reloads();
    eventually("three reloads of the storm applied", || async {
        reloads() >= before + 3.0
    })
    .await;
    four.oxford[0].stop();
    let killed = Instant::now();
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            !m.contains(&mx(10, "mail1.oxford"))
        })
        .await;
    let detected = killed.elapsed();
    // interval 200 ms and an immediate confirmation, as without reloads.
    assert!(
        detected < Duration::from_secs(2),
        "withdrawn after {detected:?}"
    );
    calm.cancel();
    let outcomes = storm.await.unwrap();
    assert!(
        outcomes[0].contains("4 addresses kept"),
        "a reload keeps the probes of addresses that stay: {}",
        outcomes[0]
    );
    // And a relay added by a reload is probed before it is served.
    setup.rest = with_cambridge(&four, 1).replace(
        "[sites.cambridge]",
        &format!(
            "[sites.london]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = 1 }}]\n[sites.cambridge]",
            crate::fake_smtp::next_loopback()
        ),
    );
    server.rewrite(&setup);
    let outcome = server.control.reload().await.unwrap();
    assert!(
        outcome.contains("1 new") && outcome.contains("1 removed"),
        "{outcome}"
    );
    let answer = server.mx("oxford.smarthost.internal").await;
    assert!(
        !answer.contains(&mx(20, "mail1.london")),
        "an unprobed relay is never served: {answer:?}"
    );
}

#[test]
fn the_cli_sends_nothing_when_its_config_does_not_load() {
    // A listener the broken config names: it must see no connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "[server]\nadmin = \"{}\"\nadmin_token = \"t\"\n[zone]\norigin = \"x\"\nfile = \"nope.zone\"\nbogus = 1\n",
            listener.local_addr().unwrap()
        ),
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    for args in [
        vec!["reload", "--config", broken],
        vec!["drain", "oxford/mail1", "--config", broken],
        vec!["undrain", "oxford/mail1", "--config", broken],
        vec!["status", "--config", broken],
        vec!["events", "--config", broken],
        vec!["status", "--config", "/nonexistent/smarthost.toml"],
        // No --config, run from a folder without zones/smarthost.toml: not 127.0.0.1:8053.
        vec!["reload"],
    ] {
        let out = cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("config error") && stderr.contains("nothing was sent"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        listener.accept().is_err(),
        "no connection reached the admin port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_state_dir_is_refused() {
    let four = Relays::sites(2, 2, 0).await;
    let setup = Setup::new(four.toml());
    let first = TestServer::start(&setup).await;
    let path = first.dir.path().join("smarthost.toml");
    let loaded = smarthostd::loaded::load(&path).unwrap();
    let sockets = smarthostd::dns::bind::bind(&loaded.config.server.listen, 1).unwrap();
    let error = match smarthostd::server::start(loaded, sockets, Default::default()).await {
        Ok(_) => panic!("a second instance started on the same state_dir"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("in use by another smarthostd"), "{error}");
    assert!(error.contains(&std::process::id().to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_drains_file_keeps_its_valid_lines() {
    let four = Relays::sites(2, 2, 0).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("drained-hosts"),
        b"oxford/mail1\n\xff\xfe garbage\nnot a key at all\ncambridge/mail2 until=never\n",
    )
    .unwrap();
    let server = TestServer::start_in(&Setup::new(four.toml()), dir).await;
    assert!(
        !server
            .mx("oxford.smarthost.internal")
            .await
            .contains(&mx(10, "mail1.oxford")),
        "the valid drain holds"
    );
    let status = server.control.status().await.unwrap();
    let keys: Vec<&str> = status.drains.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["oxford/mail1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_drains_file_stops_the_start_with_a_clear_message() {
    let four = Relays::sites(2, 2, 0).await;
    let setup = Setup::new(four.toml());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drained-hosts")).unwrap();
    std::fs::write(dir.path().join("smarthost.toml"), setup.render()).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let loaded = smarthostd::loaded::load(&dir.path().join("smarthost.toml")).unwrap();
    let sockets = smarthostd::dns::bind::bind(&loaded.config.server.listen, 1).unwrap();
    let error = match smarthostd::server::start(loaded, sockets, Default::default()).await {
        Ok(_) => panic!("started without its drains"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("drained-hosts") && error.contains("put every drained relay back"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_cannot_be_saved_says_so() {
    let four = Relays::sites(2, 2, 0).await;
    let server = TestServer::start(&Setup::new(four.toml())).await;
    // A folder where the file would be renamed to: the write fails.
    std::fs::create_dir(server.dir.path().join("drained-hosts")).unwrap();
    let done = server
        .control
        .drain("oxford", "mail1", Some(Drain { until: None }))
        .await
        .unwrap();
    assert!(done.not_saved.is_some(), "{done:?}");
    assert!(
        !server
            .mx("oxford.smarthost.internal")
            .await
            .contains(&mx(10, "mail1.oxford")),
        "it applies all the same"
    );
    let out = cli(&[
        "undrain",
        "oxford/mail1",
        "--admin",
        &server.admin.to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("NOT SAVED"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_drains_are_listed_and_cleared_and_a_returning_host_is_still_drained() {
    let four = Relays::sites(2, 2, 0).await;
    let mut setup = Setup::new(four.toml());
    let server = TestServer::start(&setup).await;
    let admin = server.admin.to_string();
    server
        .control
        .drain("cambridge", "mail2", Some(Drain { until: None }))
        .await
        .unwrap();
    setup.rest = with_cambridge(&four, 1);
    server.rewrite(&setup);
    server.control.reload().await.unwrap();
    let out = cli(&["drains", "--admin", &admin]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cambridge/mail2") && stdout.contains("no longer configured"),
        "{stdout}"
    );
    // It comes back drained, as it left (and the log says so).
    setup.rest = four.toml();
    server.rewrite(&setup);
    server.control.reload().await.unwrap();
    assert!(
        !server
            .mx("oxford.smarthost.internal")
            .await
            .contains(&mx(20, "mail2.cambridge"))
    );
    // Removed again, its stale drain can be cleared.
    setup.rest = with_cambridge(&four, 1);
    server.rewrite(&setup);
    server.control.reload().await.unwrap();
    let out = cli(&["undrain", "cambridge/mail2", "--admin", &admin]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["drains", "--admin", &admin]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no host is drained\n");
    // An unknown host is a 404, not a stale drain.
    let out = cli(&["undrain", "cambridge/nosuch", "--admin", &admin]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no host cambridge/nosuch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_drain_ends_by_itself_and_survives_a_restart() {
    let four = Relays::sites(2, 2, 0).await;
    let setup = Setup::new(four.toml());
    let server = TestServer::start(&setup).await;
    let out = cli(&[
        "drain",
        "oxford/mail1",
        "--for",
        "3s",
        "--admin",
        &server.admin.to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("drained until"),
        "{stdout}"
    );
    let file = std::fs::read_to_string(server.dir.path().join("drained-hosts")).unwrap();
    assert!(file.contains("oxford/mail1 until="), "{file}");
    assert!(
        !server
            .mx("oxford.smarthost.internal")
            .await
            .contains(&mx(10, "mail1.oxford"))
    );
    let status = server.control.status().await.unwrap();
    assert!(status.sites[0].hosts[0].drained_until.is_some());

    // A restart keeps the window and its end.
    let dir = server.stop().await;
    let server = TestServer::start_in(&setup, dir).await;
    assert!(
        !server
            .mx("oxford.smarthost.internal")
            .await
            .contains(&mx(10, "mail1.oxford"))
    );
    let started = SystemTime::now();
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.contains(&mx(10, "mail1.oxford"))
        })
        .await;
    assert!(started.elapsed().unwrap() < Duration::from_secs(5));
    // The file is written off the health task, after the answer changed (and synced to disk).
    // The window's end is kept as an undrain with the drain's own stamp, for the peers.
    eventually("the window's end in drained-hosts", || async {
        let file = std::fs::read_to_string(server.dir.path().join("drained-hosts")).unwrap();
        if !file.contains("oxford/mail1 until=") && file.contains("oxford/mail1 undrained stamp=") {
            Ok(())
        } else {
            Err(file)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_the_first_round_reload_and_stop_gracefully() {
    // Relays that accept and never greet, with a 5 s timeout: the first round may last 40 s.
    let silent = FakeSmtp::start(Behavior::Silent).await;
    let other = FakeSmtp::start(Behavior::Silent).await;
    let mut setup = Setup::new(two_sites(&silent, &other));
    setup.probe = "[probe]\ninterval = \"5s\"\ntimeout = \"5s\"\n".into();
    let mut server = ServerProcess::spawn_in(&setup, tempfile::tempdir().unwrap(), None, false);
    let ready = http_get(server.admin, "/readyz", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(ready.contains("503"), "{ready}");
    server.signal(Signal::SIGHUP);
    // The reload is seen done in the log; the process is still there after it.
    server.log_with(&["configuration unchanged"]).await;
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "SIGHUP killed the process"
    );
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("SIGTERM stops it");
    assert_eq!(status.code(), Some(0), "a graceful stop: {status}");
    assert!(server.log_text().contains("shutting down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_text_reaches_logs_and_the_terminal_escaped() {
    let nasty = FakeSmtp::start(Behavior::Greeting(
        "421 busy \x1b[2J\x1b]0;owned\x07\rINFO forged line\r\n",
    ))
    .await;
    let good = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(two_sites(&nasty, &good));
    let server = ServerProcess::spawn_text_log(&setup, tempfile::tempdir().unwrap());
    let log = server
        .log_with(&["address state changed"])
        .await
        .into_bytes();
    let admin = server.admin.to_string();
    let status = cli(&["status", "--admin", &admin]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    drop(server);
    for (what, bytes) in [("log", log), ("status", status.stdout)] {
        assert!(!bytes.contains(&0x1b), "{what}: a raw escape");
        assert!(!bytes.contains(&0x07), "{what}: a raw bell");
        assert!(!bytes.contains(&b'\r'), "{what}: a raw carriage return");
        assert!(
            String::from_utf8_lossy(&bytes).contains("\\u{1b}[2J"),
            "{what}: the escape is shown as text:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
