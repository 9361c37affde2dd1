//! Wiring: start the health task and the admin API, wait for the first probe round, then serve
//! DNS from already-bound sockets; stop everything on one cancellation token.
//!
//! The health task and its probes run on a thread of their own with a single-threaded runtime:
//! thousands of short SMTP dialogues then never hand wake-ups between worker threads, and the
//! DNS path never shares a thread with them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admin::{self, metrics::Metrics};
use crate::answer;
use crate::config::{ConfigError, ServerConfig};
use crate::dns::{self, DnsShared, DnsSockets};
use crate::health::drains::DrainStore;
use crate::health::status::StatusReport;
use crate::health::{Command, HealthTask, HealthView, Wiring};
use crate::loaded::{self, Loaded};
use crate::probe::ProbeContext;

/// Probe reports queued for the health task before probe tasks wait.
const REPORT_QUEUE: usize = 4096;

/// A running server.
pub struct Running {
    /// The DNS addresses bound (UDP and TCP each).
    pub dns_addrs: Vec<SocketAddr>,
    /// The admin HTTP address, if enabled.
    pub admin_addr: Option<SocketAddr>,
    pub control: Control,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The UDP threads and the health thread.
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Operator actions: reload, drain, status. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
    pub metrics: Arc<Metrics>,
    pub snapshot: Arc<ArcSwap<answer::Snapshot>>,
    ready: watch::Receiver<bool>,
    config_path: PathBuf,
    /// The `[server]` table running now: a reload cannot change sockets and limits.
    server: ServerConfig,
}

impl Control {
    /// Re-reads the config and zone file; on any error the running configuration stays.
    pub async fn reload(&self) -> Result<String, ConfigError> {
        let loaded = match loaded::load(&self.config_path) {
            Ok(l) => l,
            Err(e) => {
                self.metrics.reload(false);
                error!(error = %e, "reload failed; keeping the running configuration");
                return Err(e);
            }
        };
        let mut notes = Vec::new();
        let stale = self.server.restart_needed(&loaded.config.server);
        if !stale.is_empty() {
            let note = format!(
                "{} changed: these take effect after a restart",
                stale.join(", ")
            );
            warn!("{note}");
            notes.push(note);
        }
        let (reply, done) = oneshot::channel();
        let command = Command::Reload {
            loaded: Box::new(loaded),
            reply,
        };
        if self.commands.send(command).await.is_err() || done.await.is_err() {
            self.metrics.reload(false);
            return Err(ConfigError::new(
                &self.config_path,
                "",
                "the server is shutting down",
            ));
        }
        self.metrics.reload(true);
        info!(config = %self.config_path.display(), "configuration reloaded");
        notes.insert(
            0,
            "reloaded; new hosts are probed before they are served".to_string(),
        );
        Ok(notes.join("; "))
    }

    /// Drains or undrains `site/host`; `Ok` may carry a warning.
    pub async fn drain(
        &self,
        site: &str,
        host: &str,
        drained: bool,
    ) -> Result<Option<String>, String> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Drain {
            site: site.to_string(),
            host: host.to_string(),
            drained,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| "shutting down".to_string())?;
        answer.await.map_err(|_| "shutting down".to_string())?
    }

    /// The status of every site, host and address.
    pub async fn status(&self) -> Option<StatusReport> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Whether the first probe round has finished.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

/// Starts serving `loaded` on the given sockets. Returns once the first probe round is done
/// and DNS is answering.
pub async fn start(
    loaded: Loaded,
    sockets: DnsSockets,
    admin_listener: Option<std::net::TcpListener>,
) -> std::io::Result<Running> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let metrics = Arc::new(Metrics::new());
    let initial = answer::build(
        loaded.topology.clone(),
        &loaded.zone,
        Arc::new(HealthView::unknown(&loaded.topology)),
        loaded.zone.soa_serial(),
        0,
    )
    .map_err(std::io::Error::other)?;
    let snapshot = Arc::new(ArcSwap::from_pointee(initial));
    metrics.attach(snapshot.clone());
    let (reports_tx, reports) = mpsc::channel(REPORT_QUEUE);
    let (commands_tx, commands) = mpsc::channel(64);
    let (ready_tx, mut ready) = watch::channel(false);
    metrics.watch_ready(ready.clone());
    let config = loaded.config.clone();
    let state_dir = config
        .server
        .state_dir
        .clone()
        .or_else(|| config.path.parent().map(|p| p.to_path_buf()))
        .unwrap_or_default();
    let drains = match DrainStore::open(&state_dir) {
        Ok(d) => d,
        Err(e) => {
            warn!(dir = %state_dir.display(), error = %e, "cannot read drained hosts; drains will not survive a restart");
            DrainStore::in_memory()
        }
    };
    let wiring = Wiring {
        snapshot: snapshot.clone(),
        metrics: metrics.clone(),
        probes: ProbeContext {
            reports: reports_tx,
            permits: Arc::new(Semaphore::new(config.probe.max_concurrent)),
            tracker: tracker.clone(),
        },
        reports,
        commands,
        commands_tx: commands_tx.downgrade(),
        ready: ready_tx,
        drains,
        shutdown: shutdown.clone(),
    };
    let mut threads = vec![spawn_health(loaded, wiring, &metrics)?];
    // The admin API answers during the first probe round: /readyz and `smarthostd_ready` say
    // that it is still going, and /healthz that the process is alive.
    let control = Control {
        commands: commands_tx,
        metrics: metrics.clone(),
        snapshot: snapshot.clone(),
        ready: ready.clone(),
        config_path: config.path.clone(),
        server: config.server.clone(),
    };
    let admin_addr = match admin_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let token = admin::token(&config);
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracker.spawn(admin::serve(
                listener,
                control.clone(),
                token,
                shutdown.clone(),
            ));
            Some(addr)
        }
        None => None,
    };
    // The first answers must already reflect health: wait for the first probe round.
    let _ = ready.wait_for(|r| *r).await;

    let dns_addrs = sockets.local_addrs();
    let shared = Arc::new(DnsShared {
        snapshot: snapshot.clone(),
        edns_payload: config.server.edns_udp_payload,
        rate_limiter: dns::rrl::RateLimiter::new(&config.server.rate_limit),
        metrics: metrics.clone(),
    });
    for socket in sockets.udp {
        threads.push(dns::udp::spawn(socket, shared.clone(), shutdown.clone())?);
    }
    let slots = Arc::new(Semaphore::new(config.server.tcp_max_connections));
    let limits = dns::tcp::TcpLimits {
        idle_timeout: config.server.tcp_idle_timeout,
        max_queries: match config.server.tcp_max_queries {
            0 => usize::MAX - dns::tcp::CLOSING_GRACE,
            n => n,
        },
    };
    for listener in sockets.tcp {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tracker.spawn(dns::tcp::serve(
            listener,
            shared.clone(),
            limits,
            slots.clone(),
            shutdown.clone(),
        ));
    }
    info!(dns = ?dns_addrs, admin = ?admin_addr, "serving");
    Ok(Running {
        dns_addrs,
        admin_addr,
        control,
        shutdown,
        tracker,
        threads,
    })
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
    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
