//! The operator's handle on a running server: reload, drain, status, events. The admin API
//! serves it; the signal handler reloads through it; tests drive it directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use super::AdminPolicy;
use super::peers::Peers;
use crate::answer;
use crate::config::{Config, ConfigError, ServerConfig};
use crate::events::{Event, EventLog};
use crate::health::status::{DrainStatus, StatusReport};
use crate::health::{Command, MergeOutcome};
use crate::loaded;
use crate::metrics::Metrics;
use crate::state::drains::{Drain, Drains, Entry};

/// Why an operator action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such host in the configuration.
    #[error("{0}")]
    UnknownHost(String),
    /// The configuration on disk is not valid; the running one stays.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// What an operator should know: the site's answer left without local hosts, say.
    pub warning: Option<String>,
    /// Why the drain could not be written to the state directory: it holds until a restart.
    pub not_saved: Option<String>,
    /// The host's register as stamped (`site/host` and the change), for the peers.
    pub entry: (String, Entry),
}

/// Operator actions: reload, drain, status. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
    /// The metrics the admin API serves at `/metrics`; the health task and the DNS sockets write
    /// them.
    pub metrics: Arc<Metrics>,
    /// The answers served now, swapped whole by the health task on every change.
    pub snapshot: Arc<ArcSwap<answer::Snapshot>>,
    ready: watch::Receiver<bool>,
    config_path: PathBuf,
    /// The `[server]` table running now: a reload cannot change sockets and limits.
    server: ServerConfig,
    events: EventLog,
    /// What the admin API's gate checks against: the token and `server.admin_hosts`, swapped
    /// by every reload.
    policy: Arc<ArcSwap<AdminPolicy>>,
    /// The other instances, with `[cluster]`.
    peers: Option<Arc<dyn Peers>>,
}

impl Control {
    /// A handle on the health task behind `commands`, for a server started with `config`.
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        metrics: Arc<Metrics>,
        snapshot: Arc<ArcSwap<answer::Snapshot>>,
        ready: watch::Receiver<bool>,
        config: &Config,
        events: EventLog,
        policy: AdminPolicy,
    ) -> Self {
        Self {
            peers: None,
            commands,
            metrics,
            snapshot,
            ready,
            config_path: config.path.clone(),
            server: config.server.clone(),
            events,
            policy: Arc::new(ArcSwap::from_pointee(policy)),
        }
    }

    /// The same handle, acting with the other instances, `peers`.
    pub fn with_peers(self, peers: Option<Arc<dyn Peers>>) -> Self {
        Self { peers, ..self }
    }

    /// The other instances, with `[cluster]`.
    pub fn peers(&self) -> Option<&dyn Peers> {
        self.peers.as_deref()
    }

    /// The admin API's policy now.
    pub(crate) fn admin_policy(&self) -> Arc<AdminPolicy> {
        self.policy.load_full()
    }

    /// What happened: state changes, drains, reloads, answer modes.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// A receiver of the readiness flag.
    pub(crate) fn ready_watch(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Re-reads the config and zone file; on any error the running configuration stays.
    pub async fn reload(&self) -> Result<String, ControlError> {
        // Reading files and trial-building every answer is blocking work: off the workers.
        let path = self.config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || loaded::load(&path))
            .await
            .map_err(|_| ControlError::ShuttingDown)?;
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                self.metrics.reload(false);
                error!(error = %e, "reload failed; keeping the running configuration");
                self.events.record(Event::reload_failed(&e.to_string()));
                return Err(e.into());
            }
        };
        let mut notes = Vec::new();
        let mut stale = self.server.restart_needed(&loaded.config.server);
        if self.peers.is_none() && loaded.config.cluster.is_some() {
            stale.push("[cluster] (added)");
        }
        if !stale.is_empty() {
            let note = format!(
                "{} changed: these take effect after a restart",
                stale.join(", ")
            );
            warn!("{note}");
            notes.push(note);
        }
        let policy = AdminPolicy::new(&loaded);
        if let Some(peers) = &self.peers {
            peers.reconfigure(&loaded);
        }
        let (reply, done) = oneshot::channel();
        let command = Command::Reload {
            loaded: Box::new(loaded),
            reply,
        };
        if self.commands.send(command).await.is_err() {
            self.metrics.reload(false);
            return Err(ControlError::ShuttingDown);
        }
        let Ok(outcome) = done.await else {
            self.metrics.reload(false);
            return Err(ControlError::ShuttingDown);
        };
        self.policy.store(Arc::new(policy));
        self.metrics.reload(true);
        info!(config = %self.config_path.display(), "{outcome}");
        notes.insert(0, outcome);
        let reply = notes.join("; ");
        self.events.record(Event::reload(&reply));
        Ok(reply)
    }

    /// Drains `site/host` (`Some`, maybe until a time) or undrains it (`None`): the answers
    /// have changed when this returns; the result says whether the state file took it.
    pub async fn drain(
        &self,
        site: &str,
        host: &str,
        drain: Option<Drain>,
    ) -> Result<Drained, ControlError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Drain {
            site: site.to_string(),
            host: host.to_string(),
            drain,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| ControlError::ShuttingDown)?;
        let outcome = answer
            .await
            .map_err(|_| ControlError::ShuttingDown)?
            .map_err(ControlError::UnknownHost)?;
        let not_saved = match outcome.saved {
            None => None,
            Some(write) => match write.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("the writer stopped".to_string()),
            },
        };
        if let Some(error) = &not_saved {
            error!(host = %format!("{site}/{host}"), %error, "the drain applies but was not saved: it will not survive a restart");
        }
        Ok(Drained {
            warning: outcome.warning,
            not_saved,
            entry: outcome.entry,
        })
    }

    /// Merges a peer's drains (`from` names it): the answers reflect them when this returns.
    pub async fn merge(&self, drains: Drains, from: String) -> Option<MergeOutcome> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Merge {
            drains: Box::new(drains),
            from,
            reply,
        };
        self.commands.send(command).await.ok()?;
        answer.await.ok()
    }

    /// Every drain kept in the state directory, also of hosts no longer configured.
    pub async fn drains(&self) -> Option<Vec<DrainStatus>> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Drains { reply }).await.ok()?;
        answer.await.ok()
    }

    /// The status of every site, host and address, with each one's last 24 hours.
    pub async fn status(&self) -> Option<StatusReport> {
        let mut report = self.status_now().await?;
        super::last_24h::annotate(&mut report, &self.events.shared(), SystemTime::now());
        Some(report)
    }

    /// The status of every site, host and address now, without their history.
    pub async fn status_now(&self) -> Option<StatusReport> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Whether the first probe round has finished.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}
