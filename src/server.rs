//! Wiring: start the health task and the admin API, serve DNS from already-bound sockets once
//! the first probe round is done; stop everything on one cancellation token.
//!
//! The health task and its probes run on a thread of their own with a single-threaded runtime:
//! thousands of short SMTP dialogues then never hand wake-ups between worker threads, and the
//! DNS path never shares a thread with them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::admin::{self, AdminPolicy, Control, ControlSocket, Peers};
use crate::answer;
use crate::answer::HealthView;
use crate::cluster::{self, Cluster};
use crate::connections::Slots;
use crate::connections::budget::{self, Demand};
use crate::dns::{self, DnsShared, DnsSockets};
use crate::events::{Event, EventLog};
use crate::health::{HealthTask, Wiring};
use crate::loaded::Loaded;
use crate::metrics::Metrics;
use crate::probe::ProbeContext;
use crate::state::StateDir;
use crate::state::drains::Drains;
use crate::state::hlc::Clock;

/// Probe reports queued for the health task before probe tasks wait.
const REPORT_QUEUE: usize = 4096;
/// Connections the control socket holds at once: operators, not clients at large.
const CONTROL_SLOTS: usize = 8;

/// The admin API's listeners, bound before the server starts.
#[derive(Debug, Default)]
pub struct AdminListeners {
    /// The TCP listener of `server.admin`.
    pub tcp: Option<std::net::TcpListener>,
    /// The control socket of `server.control_socket`.
    pub control: Option<ControlSocket>,
}

impl AdminListeners {
    /// Binds what `config` names: `server.admin` and `server.control_socket`.
    pub fn bind(config: &crate::config::Config) -> Result<Self, String> {
        let tcp = match config.server.admin {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .map_err(|e| format!("cannot listen on admin address {addr}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Some(l)
            }
            None => None,
        };
        let control = match config.server.control_socket_path(&config.path) {
            Some(path) => Some(ControlSocket::bind(&path).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Self { tcp, control })
    }
}

/// A running server.
pub struct Running {
    /// The DNS addresses bound (UDP and TCP each).
    pub dns_addrs: Vec<SocketAddr>,
    /// The admin HTTP address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The control socket's path, if enabled.
    pub control_socket: Option<std::path::PathBuf>,
    /// The operator's handle: reload, drain, status, events and metrics.
    pub control: Control,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The UDP threads and the health thread; the UDP threads start once DNS does.
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    /// The events file's writer, stopped last so that it takes the stop too.
    events_thread: std::thread::JoinHandle<()>,
}

/// Starts the server on the given sockets: the health task and its first probe round at once,
/// the admin API at once (`/readyz` says when the round is done), DNS once the round is done,
/// so that the first answers already reflect health. Returns without waiting for the round:
/// signals are handled meanwhile ([`Running::ready`] waits for it).
pub async fn start(
    loaded: Loaded,
    sockets: DnsSockets,
    admin_listeners: AdminListeners,
) -> std::io::Result<Running> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Arc::new(Metrics::new());
    let initial = answer::build(
        loaded.topology.clone(),
        &loaded.zone,
        Arc::new(HealthView::unknown(&loaded.topology)),
        &answer::Demotions::none(),
        loaded.zone.soa_serial(),
        0,
        None,
    )
    .map_err(std::io::Error::other)?;
    let snapshot = Arc::new(ArcSwap::from_pointee(initial));
    metrics.attach(snapshot.clone());
    let (reports_tx, reports) = mpsc::channel(REPORT_QUEUE);
    let (commands_tx, commands) = mpsc::channel(64);
    let (ready_tx, ready) = watch::channel(false);
    metrics.watch_ready(ready.clone());
    let config = loaded.config.clone();
    let policy = AdminPolicy::new(&loaded);
    let shares = budget::plan(Demand {
        in_use: 0,
        probes: probe_demand(&loaded),
        dns_tcp: config.server.tcp_max_connections,
        admin: config.server.admin_max_connections,
        control: if admin_listeners.control.is_some() {
            CONTROL_SLOTS
        } else {
            0
        },
    });
    let state_dir = config.server.state_dir_path(&config.path);
    let state = StateDir::open(&state_dir).map_err(std::io::Error::other)?;
    let drains_path = state.path().join(crate::state::drains::FILE_NAME);
    let (drains, dropped) = Drains::read(&drains_path).map_err(|e| {
        std::io::Error::other(format!(
            "cannot read the drained hosts in {}: {e}; fix or remove it (serving without it would put every drained relay back into the answers)",
            drains_path.display()
        ))
    })?;
    for problem in dropped {
        error!(file = %drains_path.display(), %problem, "a damaged line of the drained hosts was dropped; the other drains are kept");
    }
    let (events, events_thread) =
        EventLog::open(state.path(), metrics.events_write_failures.clone())?;
    events.record(Event::start());
    // The cluster's name for this instance stamps its drains, with or without a cluster.
    let admin_bound = match &admin_listeners.tcp {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let peers = config.cluster.as_ref().map_or(&[][..], |c| &c.peers[..]);
    let me = cluster::members::own_name(peers, admin_bound);
    let clock = Clock::new(me.clone());
    let (drains_out, drains_watch) = watch::channel(Arc::new(Drains::default()));
    let cluster = config.cluster.as_ref().map(|_| {
        Cluster::new(
            me,
            admin_bound,
            &loaded,
            clock.clone(),
            drains_watch,
            metrics.clone(),
            events.clone(),
        )
    });
    let published = Arc::new(tokio::sync::Notify::new());
    let wiring = Wiring {
        snapshot: snapshot.clone(),
        published: published.clone(),
        metrics: metrics.clone(),
        probes: ProbeContext {
            reports: reports_tx,
            permits: Arc::new(Semaphore::new(config.probe.max_concurrent)),
            tracker: tracker.clone(),
        },
        reports,
        commands,
        ready: ready_tx,
        state: Some(state),
        drains,
        clock,
        drains_out,
        events: events.clone(),
        shutdown: shutdown.clone(),
    };
    let threads = Arc::new(Mutex::new(vec![spawn_health(loaded, wiring, &metrics)?]));

    let dns_addrs = sockets.local_addrs();
    let shared = Arc::new(DnsShared {
        snapshot: snapshot.clone(),
        edns_payload: config.server.edns_udp_payload,
        rate_limiter: dns::rrl::RateLimiter::new(&config.server.rate_limit),
        cookies: dns::cookie::Cookies::new(&config.server.cookies.keys())?,
        metrics: metrics.clone(),
        transfers: crate::transfer::Transfers::new(config.transfer.as_ref()),
    });
    if let Some(transfer) = &config.transfer {
        crate::transfer::notify::spawn(
            snapshot.clone(),
            published,
            transfer.notify.iter().map(|n| n.0).collect(),
            shared.transfers.keys().first().cloned(),
            &tracker,
            shutdown.clone(),
        );
    }
    let limits = dns::tcp::TcpLimits {
        idle_timeout: config.server.tcp_idle_timeout,
        max_queries: match config.server.tcp_max_queries {
            0 => usize::MAX - dns::tcp::CLOSING_GRACE,
            n => n,
        },
    };
    tracker.spawn(serve_dns_when_ready(
        sockets,
        shared,
        limits,
        Slots::new(shares.dns_tcp),
        ready.clone(),
        threads.clone(),
        tracker.clone(),
        shutdown.clone(),
    ));
    let control = Control::new(
        commands_tx,
        metrics,
        snapshot,
        ready,
        &config,
        events,
        policy,
    )
    .with_peers(cluster.clone().map(|c| Arc::new(c) as Arc<dyn Peers>));
    if let Some(cluster) = cluster {
        info!(instance = %cluster.me(), peers = cluster.settings().peers.len(), "cluster: polling the peers");
        tracker.spawn(cluster::sync::run(
            cluster,
            control.clone(),
            shutdown.clone(),
        ));
    }
    let admin_addr = match admin_listeners.tcp {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracker.spawn(admin::serve(
                listener,
                control.clone(),
                Slots::new(shares.admin),
                shutdown.clone(),
            ));
            info!(admin = %addr, "admin API listening");
            Some(addr)
        }
        None => None,
    };
    let control_socket = match admin_listeners.control {
        Some(socket) => {
            let path = socket.path().to_path_buf();
            tracker.spawn(admin::serve_control(
                socket,
                control.clone(),
                Slots::new(CONTROL_SLOTS),
                shutdown.clone(),
            ));
            info!(socket = %path.display(), "control socket listening");
            Some(path)
        }
        None => None,
    };
    Ok(Running {
        dns_addrs,
        admin_addr,
        control_socket,
        control,
        shutdown,
        tracker,
        threads,
        events_thread,
    })
}

/// Probes that may be in flight at once: one per address, up to `probe.max_concurrent`. A host
/// named by DNS counts for a few addresses and its resolver's sockets.
fn probe_demand(loaded: &Loaded) -> usize {
    let hosts = &loaded.topology.hosts;
    let addresses: usize = hosts
        .iter()
        .map(|h| {
            if h.target.is_some() {
                6
            } else {
                h.addresses.len()
            }
        })
        .sum();
    addresses.min(loaded.config.probe.max_concurrent)
}

/// Waits for the first probe round, then answers DNS on every socket.
#[allow(clippy::too_many_arguments)]
async fn serve_dns_when_ready(
    sockets: DnsSockets,
    shared: Arc<DnsShared>,
    limits: dns::tcp::TcpLimits,
    slots: Arc<Slots>,
    mut ready: watch::Receiver<bool>,
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    tokio::select! {
        r = ready.wait_for(|r| *r) => if r.is_err() { return },
        () = shutdown.cancelled() => return,
    }
    let dns_addrs = sockets.local_addrs();
    for socket in sockets.udp {
        match dns::udp::spawn(socket, shared.clone(), shutdown.clone()) {
            Ok(thread) => threads.lock().expect("threads lock").push(thread),
            Err(e) => {
                error!(error = %e, "cannot start a DNS thread; stopping");
                shutdown.cancel();
                return;
            }
        }
    }
    for listener in sockets.tcp {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                tracker.spawn(dns::tcp::serve(
                    listener,
                    shared.clone(),
                    limits,
                    slots.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                error!(error = %e, "cannot serve DNS over TCP; stopping");
                shutdown.cancel();
                return;
            }
        }
    }
    info!(dns = ?dns_addrs, "serving");
}

/// Runs the health task, and with it every probe, on its own thread and runtime. When the task
/// ends (shutdown), dropping the runtime drops the probe tasks left on it.
fn spawn_health(
    loaded: Loaded,
    wiring: Wiring,
    metrics: &Metrics,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    metrics.count_tasks_of(runtime.handle().clone());
    std::thread::Builder::new()
        .name("smarthostd-probes".into())
        .spawn(move || runtime.block_on(HealthTask::run(loaded, wiring)))
}

impl Running {
    /// Waits until the first probe round is done and DNS answers; `false` when the server
    /// stopped first.
    pub async fn ready(&self) -> bool {
        let mut ready = self.control.ready_watch();
        tokio::select! {
            r = ready.wait_for(|r| *r) => r.is_ok(),
            () = self.shutdown.cancelled() => false,
        }
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let threads = std::mem::take(&mut *self.threads.lock().expect("threads lock"));
        let events = self.control.events().clone();
        let events_thread = self.events_thread;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
            // Nothing records any more: the stop is the last event, and the file has it.
            events.record(Event::stop());
            events.close();
            let _ = events_thread.join();
        })
        .await;
    }
}
