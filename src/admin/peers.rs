//! What the other instances of a cluster add to this one's admin API: the hook a [`Control`]
//! holds with `[cluster]`. The cluster (above this module: it calls the admin API, here and on
//! its peers) implements it; the admin API knows only this: a drain or a reload made here is
//! also delivered to the peers, whose results the reply names, and the status and page show
//! every instance.

use async_trait::async_trait;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::{Control, ControlError};
use crate::health::status::StatusReport;
use crate::loaded::Loaded;
use crate::state::drains::Entry;

/// How a change went on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done: for a drain, in its answers when it replied.
    Applied,
    /// Not reachable now: it gets the change when it is back.
    Unreachable,
    /// It refused this instance's token (or could not prove it holds it): it will not get the
    /// change until the tokens agree.
    Refused,
    /// It answered with an error: a reload whose config does not load there, say.
    Failed,
}

/// One instance's result, as the reply names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The instance: this one's name, or a peer's address as `cluster.peers` lists it.
    pub instance: String,
    /// How the change went there.
    pub result: Outcome,
    /// What happened there, or why not, for a person to read.
    pub message: String,
}

/// The other instances, as the admin API sees them.
#[async_trait]
pub trait Peers: Send + Sync + std::fmt::Debug {
    /// This instance's name, as its peers know it.
    fn me(&self) -> &str;

    /// Delivers the register of `key`, as stamped here, to every peer; each one's result.
    async fn deliver_drain(&self, key: &str, entry: &Entry) -> Vec<Delivery>;

    /// An operator's reload: of this instance (through `control`) and, at once, of every peer;
    /// this instance's result, and each peer's.
    async fn reload(&self, control: &Control) -> (Result<String, ControlError>, Vec<Delivery>);

    /// Takes up a configuration that passed every check: its peers, token, fingerprint.
    fn reconfigure(&self, loaded: &Loaded);

    /// The routes the peers call, merged into the admin API behind its gate.
    fn routes(&self) -> Router<Control>;

    /// Every instance side by side, for `/status?cluster=1` (under `cluster`).
    fn status(&self, report: &StatusReport) -> serde_json::Value;

    /// The same, as a section of the status page.
    fn page(&self, report: &StatusReport) -> String;
}
