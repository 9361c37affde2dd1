//! What the health task is asked (drain, reload, status, drains, a peer's drains to merge), and
//! what it answers.

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::status::{DrainStatus, StatusReport};
use crate::loaded::Loaded;
use crate::state::drains::{Drain, Drains, Entry};

/// Requests to the health task.
pub enum Command {
    /// Drain `site/host` (`Some`, maybe until a time) or undrain it (`None`), stamped now.
    Drain {
        /// The site's name.
        site: String,
        /// The host's name in the site.
        host: String,
        /// The drain to set (with its end, when timed), or `None` to undrain.
        drain: Option<Drain>,
        /// What the drain did, or why there is no such host.
        reply: oneshot::Sender<Result<DrainOutcome, String>>,
    },
    /// Switch to a new, already checked configuration; the reply says what changed.
    Reload {
        /// The configuration to switch to.
        loaded: Box<Loaded>,
        /// What the reload changed, in words: addresses kept, probed again, added and removed.
        reply: oneshot::Sender<String>,
    },
    /// The status of every site, host and address.
    Status {
        /// The report, without the last 24 hours (the events give those).
        reply: oneshot::Sender<StatusReport>,
    },
    /// Every drain in the state file, configured hosts or not.
    Drains {
        /// Every drain, as `GET /drains` lists them.
        reply: oneshot::Sender<Vec<DrainStatus>>,
    },
    /// Merge a peer's drains: the greater stamp wins each host.
    Merge {
        /// The peer's registers.
        drains: Box<Drains>,
        /// The peer, for events and logs.
        from: String,
        /// What the merge changed; sent once the answers reflect it.
        reply: oneshot::Sender<MergeOutcome>,
    },
}

/// What a drain command did.
pub struct DrainOutcome {
    /// What an operator should know: the site's answer left without local hosts, say.
    pub warning: Option<String>,
    /// Whether the state file took the change; `None` when nothing changed.
    pub saved: Option<JoinHandle<std::io::Result<()>>>,
    /// The host's register (`site/host` and the stamped change): what the peers are sent.
    pub entry: (String, Entry),
}

/// What merging a peer's drains did.
#[derive(Debug, Default)]
pub struct MergeOutcome {
    /// Hosts whose register the peer's entry replaced.
    pub changed: usize,
    /// Entries not taken, and why (a stamp too far ahead of this clock).
    pub refused: Vec<String>,
}
