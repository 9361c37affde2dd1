//! Act once: a drain, an undrain, a timed drain or a reload made on one instance is in every
//! instance's answers when the reply comes (within a second), and the reply names each
//! instance and its result; an instance that was down catches up within a second of starting.

use std::time::{Duration, Instant};

use smarthostd::admin::Outcome;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_on_one_is_in_every_instances_answers_within_a_second() {
    let relays = Relays::start().await;
    let cluster = Cluster::start(3, &relays.toml()).await;
    for i in 0..3 {
        assert_eq!(cluster.server(i).mx(OXFORD).await, full());
    }
    // Drained on each instance in turn, undrained on the next: five times round.
    for round in 0..5 {
        let (on, off) = (round % 3, (round + 1) % 3);
        let asked = Instant::now();
        let (code, result) = act(cluster.nodes[on].admin, "/hosts/oxford/mail1/drain", TOKEN).await;
        assert_eq!(code, 200, "{result:?}");
        for i in 0..3 {
            assert_eq!(
                cluster.server(i).mx(OXFORD).await,
                without_mail1(),
                "instance {i}"
            );
        }
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
        // The reply names each instance, this one first, and each has it.
        let names: Vec<&str> = result
            .instances
            .iter()
            .map(|d| d.instance.as_str())
            .collect();
        let mut want = vec![cluster.nodes[on].admin.to_string()];
        want.extend(
            (0..3)
                .filter(|&i| i != on)
                .map(|i| cluster.nodes[i].admin.to_string()),
        );
        assert_eq!(names, want);
        assert!(
            result
                .instances
                .iter()
                .all(|d| d.result == Outcome::Applied),
            "{result:?}"
        );
        let (code, _) = act(
            cluster.nodes[off].admin,
            "/hosts/oxford/mail1/undrain",
            TOKEN,
        )
        .await;
        assert_eq!(code, 200);
        for i in 0..3 {
            assert_eq!(cluster.server(i).mx(OXFORD).await, full(), "instance {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_drain_ends_at_the_same_time_everywhere_and_the_cli_names_each_instance() {
    let relays = Relays::start().await;
    // Polls 5 s apart: the views of the others must follow the drain without waiting for one.
    let bound = Cluster::bind(3);
    let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
    let slow = |_: usize, s: &mut Setup| {
        s.probe = "[probe]\ninterval = \"5s\"\ntimeout = \"1s\"\n".into();
    };
    let cluster = bound.start(|_| all.clone(), slow, &relays.toml()).await;
    let config = cluster.server(2).dir.path().join("smarthost.toml");
    let out = cli(&[
        "drain",
        "oxford/mail2",
        "--for",
        "2h",
        "-c",
        config.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("oxford/mail2 drained until"), "{stdout}");
    for node in &cluster.nodes {
        let line = stdout.lines().find(|l| l.contains(&node.admin.to_string()));
        assert!(line.is_some(), "{} missing from:\n{stdout}", node.admin);
    }
    let mut ends = Vec::new();
    for i in 0..3 {
        let status = cluster.server(i).control.status().await.unwrap();
        let host = &status.sites[0].hosts[1];
        assert!(host.drained, "instance {i}");
        ends.push(host.drained_until.clone().expect("a timed drain"));
    }
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{ends:?}");
    // The views each instance holds of the others follow at once, not a poll (5 s) later.
    let admin = cluster.nodes[0].admin;
    eventually_within(
        Duration::from_secs(2),
        "every view showing the drain",
        || async {
            let report = cluster_report(admin).await;
            let row = report.relays.iter().find(|r| r.host == "mail2").unwrap();
            row.views
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.verdict == "drained"))
        },
    )
    .await;
    // The register is kept with its stamp, in the same form on every instance.
    let file = |i: usize| {
        std::fs::read_to_string(cluster.server(i).dir.path().join("drained-hosts")).unwrap()
    };
    assert!(file(0).contains("stamp="), "{}", file(0));
    assert_eq!(file(0), file(1));
    assert_eq!(file(1), file(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_down_during_a_drain_has_it_within_a_second_of_starting() {
    let relays = Relays::start().await;
    let mut cluster = Cluster::start(3, &relays.toml()).await;
    cluster.stop(2).await;
    let (code, result) = act(cluster.nodes[0].admin, "/hosts/oxford/mail1/drain", TOKEN).await;
    assert_eq!(code, 200);
    let away = &result.instances[2];
    assert_eq!(away.instance, cluster.nodes[2].admin.to_string());
    assert_eq!(away.result, Outcome::Unreachable, "{away:?}");
    assert!(away.message.contains("when it is back"), "{away:?}");
    let started = Instant::now();
    cluster.restart(2).await;
    let server = cluster.server(2);
    eventually_within(
        Duration::from_secs(1),
        "the restarted instance's drain",
        || async { server.mx(OXFORD).await == without_mail1() },
    )
    .await;
    eprintln!("caught up {:?} after the start began", started.elapsed());
    // And an undrain made while it is down again, the same way.
    cluster.stop(2).await;
    act(cluster.nodes[1].admin, "/hosts/oxford/mail1/undrain", TOKEN).await;
    let started = Instant::now();
    cluster.restart(2).await;
    let server = cluster.server(2);
    eventually_within(
        Duration::from_secs(1),
        "the restarted instance's undrain",
        || async { server.mx(OXFORD).await == full() },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_every_instance_and_each_reads_its_own_file() {
    let relays = Relays::start().await;
    let mut cluster = Cluster::start(3, &relays.toml()).await;
    // Every instance's file loses oxford's mail2; only instance 0 is asked to reload.
    let fewer = format!(
        "[sites.oxford]\nhosts = [{}]\n[sites.cambridge]\nhosts = [{}]\n",
        relays.oxford[0].host_entry("mail1"),
        relays.cambridge[0].host_entry("mail1")
    );
    for i in 0..3 {
        let node = &mut cluster.nodes[i];
        node.setup.rest = node.setup.rest.replace(&relays.toml(), &fewer);
        cluster.server(i).rewrite(&cluster.nodes[i].setup);
    }
    let (code, result) = act(cluster.nodes[0].admin, "/reload", TOKEN).await;
    assert_eq!(code, 200, "{result:?}");
    assert_eq!(result.instances.len(), 3, "{result:?}");
    assert!(
        result
            .instances
            .iter()
            .all(|d| d.result == Outcome::Applied),
        "{result:?}"
    );
    assert!(
        result.instances[1].message.contains("removed"),
        "{result:?}"
    );
    let want = vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")];
    for i in 0..3 {
        assert_eq!(cluster.server(i).mx(OXFORD).await, want, "instance {i}");
    }
    // Asked again, each has nothing to do, and says so.
    let (_, again) = act(cluster.nodes[2].admin, "/reload", TOKEN).await;
    assert!(
        again.instances[1..]
            .iter()
            .all(|d| d.message.contains("unchanged")),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_added_by_a_reload_is_reached_and_one_removed_is_not() {
    let relays = Relays::start().await;
    let bound = Cluster::bind(2);
    let admins = bound.admins.clone();
    // Instance 0 starts naming itself only; instance 1 names both.
    let peers = move |i: usize| match i {
        0 => vec![admins[0].to_string()],
        _ => admins.iter().map(ToString::to_string).collect(),
    };
    let mut cluster = bound.start(peers, |_, _| {}, &relays.toml()).await;
    let (a, b) = (cluster.nodes[0].admin, cluster.nodes[1].admin);
    let (_, alone) = act(a, "/hosts/oxford/mail1/drain", TOKEN).await;
    assert_eq!(alone.instances.len(), 1, "{alone:?}");
    act(a, "/hosts/oxford/mail1/undrain", TOKEN).await;
    let node = &mut cluster.nodes[0];
    node.setup.rest = node.setup.rest.replace(
        &format!("peers = [\"{a}\"]"),
        &format!("peers = [\"{a}\", \"{b}\"]"),
    );
    cluster.server(0).rewrite(&cluster.nodes[0].setup);
    let (code, reload) = act(a, "/reload", TOKEN).await;
    assert_eq!(code, 200, "{reload:?}");
    let (_, result) = act(a, "/hosts/oxford/mail2/drain", TOKEN).await;
    let names: Vec<String> = result
        .instances
        .iter()
        .map(|d| d.instance.clone())
        .collect();
    assert_eq!(names, [a.to_string(), b.to_string()]);
    assert_eq!(result.instances[1].result, Outcome::Applied, "{result:?}");
    let peer = format!("peer=\"{b}\"");
    eventually_within(
        Duration::from_secs(5),
        "the added peer's series",
        || async { metric(a, "smarthostd_peer_up", &[&peer]).await == Some(1.0) },
    )
    .await;
    // Removed again: no longer reached, and its series is gone.
    let node = &mut cluster.nodes[0];
    node.setup.rest = node.setup.rest.replace(&format!(", \"{b}\"]"), "]");
    cluster.server(0).rewrite(&cluster.nodes[0].setup);
    act(a, "/reload", TOKEN).await;
    let (_, result) = act(a, "/hosts/oxford/mail2/undrain", TOKEN).await;
    assert_eq!(result.instances.len(), 1, "{result:?}");
    assert_eq!(metric(a, "smarthostd_peer_up", &[&peer]).await, None);
}
