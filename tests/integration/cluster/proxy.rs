//! A TCP path between instances that a test can cut and heal: it forwards every connection to
//! its target until cut, then its port refuses connections and those open are dropped — a
//! network partition without a firewall. Healed, it listens on the same port again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(super) struct Proxy {
    /// Where instances dial it: named in `cluster.peers` in place of the target.
    pub(super) addr: SocketAddr,
    target: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    /// A path to `target` (which need not listen yet), open.
    pub(super) fn start(target: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            tasks: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let target = self.target;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut links = JoinSet::new();
            loop {
                let Ok((mut from, _)) = listener.accept().await else {
                    continue;
                };
                links.spawn(async move {
                    if let Ok(mut to) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
                    }
                });
                while links.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }

    /// Cuts the path: nothing crosses until [`heal`](Self::heal).
    pub(super) fn cut(&mut self) {
        self.tasks = None;
    }

    /// Opens the path again, on the same port.
    pub(super) fn heal(&mut self) {
        assert!(self.tasks.is_none(), "cut before healing");
        let listener = std::net::TcpListener::bind(self.addr).unwrap();
        self.serve(listener);
    }
}
