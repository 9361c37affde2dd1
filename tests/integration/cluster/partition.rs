//! An instance cut off from the others while it keeps running: every path to and from it goes
//! through a [`Proxy`] the test cuts. It is reported (status, metric, event), it keeps
//! answering on its own, it catches up when the paths heal, and changes that crossed while it
//! was away resolve to the later one on every instance.

use std::time::Duration;

use smarthostd::admin::Outcome;
use smarthostd::events::Kind;

use super::proxy::Proxy;
use super::*;

/// Instances 0 and 1 reach each other directly; every path to or from instance 2 goes through
/// a proxy: `to_2` (what 0 and 1 dial for it) and `from_2` (what it dials for 0 and for 1).
struct Cut {
    cluster: Cluster,
    to_2: Proxy,
    from_2: Vec<Proxy>,
}

impl Cut {
    async fn start(relays: &Relays) -> Self {
        let bound = Cluster::bind(3);
        let a = bound.admins.clone();
        let to_2 = Proxy::start(a[2]);
        let from_2 = vec![Proxy::start(a[0]), Proxy::start(a[1])];
        let (to, from) = (to_2.addr, [from_2[0].addr, from_2[1].addr]);
        let peers = move |i: usize| match i {
            2 => vec![a[2].to_string(), from[0].to_string(), from[1].to_string()],
            _ => vec![a[0].to_string(), a[1].to_string(), to.to_string()],
        };
        let cluster = bound.start(peers, |_, _| {}, &relays.toml()).await;
        Self {
            cluster,
            to_2,
            from_2,
        }
    }

    fn cut(&mut self) {
        self.to_2.cut();
        self.from_2.iter_mut().for_each(Proxy::cut);
    }

    fn heal(&mut self) {
        self.to_2.heal();
        self.from_2.iter_mut().for_each(Proxy::heal);
    }

    fn server(&self, i: usize) -> &TestServer {
        self.cluster.server(i)
    }

    fn admin(&self, i: usize) -> SocketAddr {
        self.cluster.nodes[i].admin
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_is_reported_keeps_answering_and_catches_up() {
    let relays = Relays::start().await;
    let mut cut = Cut::start(&relays).await;
    let to_2 = cut.to_2.addr.to_string();
    eventually_within(Duration::from_secs(5), "every instance up", || async {
        let report = cluster_report(cut.admin(0)).await;
        report
            .instances
            .iter()
            .all(|i| i.state == "this" || i.state == "up")
    })
    .await;
    cut.cut();
    let (code, result) = act(cut.admin(0), "/hosts/oxford/mail1/drain", TOKEN).await;
    assert_eq!(code, 200);
    let away = result
        .instances
        .iter()
        .find(|d| d.instance == to_2)
        .unwrap();
    assert_eq!(away.result, Outcome::Unreachable, "{result:?}");
    assert_eq!(cut.server(1).mx(OXFORD).await, without_mail1());
    // No message crosses: the cut-off instance still serves mail1, and answers on its own.
    assert_eq!(cut.server(2).mx(OXFORD).await, full());
    // Reported: in the status at once, in the metric, and after unreachable_after (1 s) as an
    // event and a WARN.
    eventually_within(
        Duration::from_secs(5),
        "the peer shown as unreachable",
        || async {
            let report = cluster_report(cut.admin(0)).await;
            let peer = report.instances.iter().find(|i| i.name == to_2).unwrap();
            peer.state == "unreachable"
                && peer.problem.is_some()
                && report.relays.iter().all(|r| r.views[2].is_none())
        },
    )
    .await;
    assert_eq!(
        metric(
            cut.admin(0),
            "smarthostd_peer_up",
            &[&format!("peer=\"{to_2}\"")]
        )
        .await,
        Some(0.0)
    );
    let log = |i: usize| cut.server(i).control.events().clone();
    let (log0, log2) = (log(0), log(2));
    let events = move |i: usize| {
        let log = if i == 0 { &log0 } else { &log2 };
        log.list(&Default::default())
    };
    eventually_within(
        Duration::from_secs(5),
        "the unreachable peer's event",
        || async {
            (events(0).iter())
                .any(|e| e.kind == Kind::Peer && e.to.as_deref() == Some("unreachable"))
        },
    )
    .await;
    // Healed: it catches up, and its return is an event.
    cut.heal();
    eventually_within(
        Duration::from_secs(5),
        "the cut-off instance catching up",
        || async { cut.server(2).mx(OXFORD).await == without_mail1() },
    )
    .await;
    eventually_within(Duration::from_secs(5), "the peer's return", || async {
        let back = events(0).iter().any(|e| {
            e.kind == Kind::Peer
                && e.to.as_deref() == Some("reachable")
                && e.address.as_deref() == Some(to_2.as_str())
        });
        let up = metric(
            cut.admin(0),
            "smarthostd_peer_up",
            &[&format!("peer=\"{to_2}\"")],
        )
        .await;
        back && up == Some(1.0)
    })
    .await;
    // Its own event names the drain's origin.
    let drained = events(2)
        .into_iter()
        .find(|e| e.kind == Kind::Drain)
        .expect("a drain event on the instance that caught up");
    let origin = cut.admin(0).to_string();
    assert!(drained.reason.unwrap().contains(&origin));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_changes_resolve_to_the_later_one_everywhere() {
    let relays = Relays::start().await;
    let mut cut = Cut::start(&relays).await;
    // mail1 drained everywhere; mail2 served everywhere.
    act(cut.admin(0), "/hosts/oxford/mail1/drain", TOKEN).await;
    assert_eq!(cut.server(2).mx(OXFORD).await, without_mail1());
    cut.cut();
    // mail1: undrained on 0, then drained again on 2 (which has not seen the undrain): 2's is
    // later. mail2: drained on 2, then undrained on 1 (which has not seen the drain): 1's is.
    // "Later" is by the clock, to the millisecond: each change waits for the clock to pass
    // the stamp of the one it must follow.
    act(cut.admin(0), "/hosts/oxford/mail1/undrain", TOKEN).await;
    act(cut.admin(2), "/hosts/oxford/mail2/drain", TOKEN).await;
    past_stamp(cut.server(0), "oxford/mail1").await;
    act(cut.admin(2), "/hosts/oxford/mail1/drain", TOKEN).await;
    past_stamp(cut.server(2), "oxford/mail2").await;
    act(cut.admin(1), "/hosts/oxford/mail2/undrain", TOKEN).await;
    assert_eq!(cut.server(0).mx(OXFORD).await, full());
    assert_eq!(
        cut.server(2).mx(OXFORD).await,
        vec![mx(20, "mail1.cambridge")]
    );
    cut.heal();
    let want = without_mail1();
    for i in 0..3 {
        let server = cut.server(i);
        eventually_within(
            Duration::from_secs(5),
            "the later changes everywhere",
            || async { server.mx(OXFORD).await == want },
        )
        .await;
    }
    // And they stay so: the registers agree, line for line.
    let file =
        |i: usize| std::fs::read_to_string(cut.server(i).dir.path().join("drained-hosts")).unwrap();
    eventually_within(Duration::from_secs(5), "the same registers", || async {
        file(0) == file(1) && file(1) == file(2)
    })
    .await;
    for i in 0..3 {
        assert_eq!(cut.server(i).mx(OXFORD).await, want, "instance {i}");
    }
}

/// Waits until the wall clock has passed the stamp of `key`'s register on `server`.
async fn past_stamp(server: &TestServer, key: &str) {
    let file = std::fs::read_to_string(server.dir.path().join("drained-hosts")).unwrap();
    let line = file
        .lines()
        .find(|l| l.starts_with(key))
        .expect("a register");
    let stamp = line.split("stamp=").nth(1).expect("a stamp");
    let millis: u128 = stamp.split('.').next().unwrap().parse().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    eventually_within(
        Duration::from_secs(1),
        "the clock passing a stamp",
        || async { now() > millis },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_made_while_an_instance_was_cut_off_reaches_it_when_it_is_back() {
    let relays = Relays::start().await;
    let mut cut = Cut::start(&relays).await;
    let fewer = format!(
        "[sites.oxford]\nhosts = [{}]\n[sites.cambridge]\nhosts = [{}]\n",
        relays.oxford[0].host_entry("mail1"),
        relays.cambridge[0].host_entry("mail1")
    );
    for i in 0..3 {
        let node = &mut cut.cluster.nodes[i];
        node.setup.rest = node.setup.rest.replace(&relays.toml(), &fewer);
        cut.server(i).rewrite(&cut.cluster.nodes[i].setup);
    }
    cut.cut();
    let (code, result) = act(cut.admin(1), "/reload", TOKEN).await;
    assert_eq!(code, 200);
    assert_eq!(
        result.instances[2].result,
        Outcome::Unreachable,
        "{result:?}"
    );
    let want = vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")];
    assert_eq!(cut.server(0).mx(OXFORD).await, want, "{result:?}");
    assert_eq!(
        cut.server(2).mx(OXFORD).await,
        full(),
        "not reloaded while cut off"
    );
    cut.heal();
    let server = cut.server(2);
    eventually_within(Duration::from_secs(5), "the reload it missed", || async {
        server.mx(OXFORD).await == want
    })
    .await;
}
