//! Several instances, one service: three (or four) servers on loopback, each with its own
//! folder and admin listener, naming each other in `[cluster]`. Admin listeners are bound
//! first, so that every config can name every address before any server starts.
//!
//! - [`act`]: a drain, an undrain, a reload made once reach every instance; one that was down
//!   catches up when it starts.
//! - [`partition`]: an instance cut off from the others (through [`proxy`]) is reported, keeps
//!   answering, and catches up; changes that crossed resolve to the later one everywhere.
//! - [`see`]: every instance side by side; a relay only one instance can reach is a
//!   disagreement, an event and a metric; a config that differs is flagged.
//! - [`hostile`]: a peer without the token, a peer that cannot prove it holds it, a peer that
//!   hangs, a peer whose words carry control characters, forged and replayed requests.

mod act;
mod config;
mod hostile;
mod partition;
mod proxy;
mod see;

use std::net::SocketAddr;

use smarthostd::admin::ActionResult;
use smarthostd::cluster::report::ClusterReport;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// The token every instance shares.
pub(super) const TOKEN: &str = "cluster-test-token-0123456789abcdef";
/// The name whose answers the tests watch.
pub(super) const OXFORD: &str = "oxford.smarthost.internal";

/// Oxford's whole answer, and its answer without `mail1`.
pub(super) fn full() -> Vec<(u16, String)> {
    vec![
        mx(10, "mail1.oxford"),
        mx(10, "mail2.oxford"),
        mx(20, "mail1.cambridge"),
    ]
}

pub(super) fn without_mail1() -> Vec<(u16, String)> {
    vec![mx(10, "mail2.oxford"), mx(20, "mail1.cambridge")]
}

/// One instance: its config, its folder, and the server while it runs.
pub(super) struct Node {
    pub(super) admin: SocketAddr,
    pub(super) setup: Setup,
    server: Option<TestServer>,
    dir: Option<tempfile::TempDir>,
    listener: Option<std::net::TcpListener>,
}

/// Instances that name each other.
pub(super) struct Cluster {
    pub(super) nodes: Vec<Node>,
}

/// The setup of an instance at `admin` with `token`, naming `peers`, serving `sites`.
pub(super) fn cluster_setup(
    admin: SocketAddr,
    token: &str,
    peers: &[String],
    sites: &str,
) -> Setup {
    let mut setup = Setup::new(format!(
        "{sites}[cluster]\npeers = [{}]\nunreachable_after = \"1s\"\n",
        peers
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    setup.admin = admin.to_string();
    setup.server = format!("admin_token = \"{token}\"\n");
    setup
}

/// Admin listeners bound, before any instance starts: every config can name every address.
pub(super) struct Bound {
    pub(super) admins: Vec<SocketAddr>,
    listeners: Vec<std::net::TcpListener>,
}

impl Bound {
    /// Starts the instances; instance `i` lists `peers(i)`, and `adjust` may change its setup.
    pub(super) async fn start(
        self,
        peers: impl Fn(usize) -> Vec<String>,
        adjust: impl Fn(usize, &mut Setup),
        sites: &str,
    ) -> Cluster {
        let dirs = (self.admins.iter())
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        self.start_in(dirs, peers, adjust, sites).await
    }

    /// As [`start`](Self::start), instance `i` in the folder `dirs[i]`, which may already
    /// hold files its config names.
    pub(super) async fn start_in(
        self,
        dirs: Vec<tempfile::TempDir>,
        peers: impl Fn(usize) -> Vec<String>,
        adjust: impl Fn(usize, &mut Setup),
        sites: &str,
    ) -> Cluster {
        let mut cluster = Cluster { nodes: Vec::new() };
        for ((i, listener), dir) in self.listeners.into_iter().enumerate().zip(dirs) {
            let mut setup = cluster_setup(self.admins[i], TOKEN, &peers(i), sites);
            adjust(i, &mut setup);
            cluster.nodes.push(Node {
                admin: self.admins[i],
                setup,
                server: None,
                dir: Some(dir),
                listener: Some(listener),
            });
        }
        for i in 0..cluster.nodes.len() {
            cluster.launch(i).await;
        }
        cluster
    }
}

impl Cluster {
    /// Binds `n` admin listeners on loopback.
    pub(super) fn bind(n: usize) -> Bound {
        let listeners: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let admins = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        Bound { admins, listeners }
    }

    /// `n` instances serving `sites`, each listing every one (itself too: one list serves all).
    pub(super) async fn start(n: usize, sites: &str) -> Self {
        let bound = Self::bind(n);
        let all: Vec<String> = bound.admins.iter().map(ToString::to_string).collect();
        bound.start(|_| all.clone(), |_, _| {}, sites).await
    }

    async fn launch(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let listener = match node.listener.take() {
            Some(l) => l,
            // Its address again: the others name it.
            None => std::net::TcpListener::bind(node.admin).unwrap(),
        };
        let dir = node.dir.take().expect("a stopped node has its folder");
        node.server = Some(TestServer::start_with(&node.setup, dir, listener).await);
    }

    /// The running server of instance `i`.
    pub(super) fn server(&self, i: usize) -> &TestServer {
        self.nodes[i].server.as_ref().expect("instance running")
    }

    /// Stops instance `i`, keeping its folder (and its drains).
    pub(super) async fn stop(&mut self, i: usize) {
        let server = self.nodes[i].server.take().expect("instance running");
        self.nodes[i].dir = Some(server.stop().await);
    }

    /// Starts instance `i` again on its address and folder.
    pub(super) async fn restart(&mut self, i: usize) {
        self.launch(i).await;
    }
}

/// A state change as the CLI makes it, with the shared token: status and result.
pub(super) async fn act(admin: SocketAddr, path: &str, token: &str) -> (u16, ActionResult) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\n\
         X-Smarthostd-Request: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = http_raw(admin, &request).await;
    let result = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, result)
}

/// `GET /status?cluster=1`'s cluster part.
pub(super) async fn cluster_report(admin: SocketAddr) -> ClusterReport {
    let (status, body) = http_status_and_body(admin, "/status?cluster=1").await;
    assert_eq!(status, 200, "{body}");
    let status: smarthostd::cluster::report::ClusterStatus = serde_json::from_str(&body).unwrap();
    status.cluster.expect("a cluster report")
}

/// The value of the sample of `name` whose labels contain every one of `labels`.
pub(super) async fn metric(admin: SocketAddr, name: &str, labels: &[&str]) -> Option<f64> {
    let (_, scrape) = http_status_and_body(admin, "/metrics").await;
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}
