//! Several instances, one service (`[cluster]`): an operator acts once, sees every instance,
//! and hears when they disagree. Beside the flow, as `admin` is: nothing here is on the DNS
//! path or in the health task; with every peer gone, an instance answers and probes as alone.
//!
//! The drains' clock, whose stamps order them alike everywhere, is
//! [`state::hlc`](crate::state::hlc).
//!
//! - [`members`]: which entries of `cluster.peers` are other instances (the file is shared).
//! - [`peer`]: one bounded, authenticated request to a peer; [`proof`]: the answer's proof
//!   that the peer holds the shared token.
//! - [`wire`]: what instances exchange (a view, the drains), checked where it enters.
//! - `act`: a drain, an undrain or a reload made here, delivered to every peer at once.
//! - [`sync`]: the peer task: every probe interval it polls each peer's view, pulls and
//!   merges drains that differ (anti-entropy: a restarted or cut-off instance catches up),
//!   catches up on a reload it missed, and reports unreachable peers and disagreements.
//! - [`disagree`]: when instances see a relay differently for too long (pure).
//! - [`fingerprint`]: what instances compare to flag one whose configuration differs.
//! - [`report`]: every instance side by side, for `/status?cluster=1`, the CLI and the page.
//! - [`routes`]: the admin routes peers call (`/cluster/...`).

mod act;
pub(crate) mod disagree;
pub(crate) mod fingerprint;
pub(crate) mod members;
pub(crate) mod page;
pub(crate) mod peer;
pub mod proof;
pub mod report;
pub(crate) mod routes;
pub(crate) mod sync;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::state::hlc::{Clock, Stamp, TooFarAhead};
use peer::PeerLink;
use wire::View;

use crate::admin::{Control, ControlError};
use crate::config::AdminToken;
use crate::events::EventLog;
use crate::loaded::Loaded;
use crate::metrics::Metrics;
use crate::state::drains::Drains;

/// What the cluster runs with; a reload swaps it whole.
#[derive(Debug)]
pub struct Settings {
    /// The other instances (this one left out), in config order.
    pub peers: Vec<PeerLink>,
    /// The token shared by every instance.
    pub token: Option<AdminToken>,
    /// The fingerprint of this instance's config and zone.
    pub fingerprint: String,
    /// Between two polls of the peers: the probe interval.
    pub interval: Duration,
    /// How long instances may see a relay differently before it is a disagreement: one probe
    /// interval plus two probe timeouts.
    pub bound: Duration,
    /// A peer unreachable this long is an event (`cluster.unreachable_after`).
    pub unreachable_after: Duration,
}

/// How the last exchange with a peer went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Not tried yet.
    Unknown,
    /// It answered, and proved it holds the token.
    Up,
    /// It could not be reached, or did not answer in time.
    Unreachable(String),
    /// It refused this instance's token, or could not prove it holds it.
    Refused(String),
}

/// What is known of one peer.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// How the last exchange went.
    pub link: Link,
    /// Since when the link has been up, or not.
    pub since: Instant,
    /// Its latest view, and when it was fetched.
    pub view: Option<(Arc<View>, Instant)>,
    /// An event said it was unreachable: its return is an event too.
    pub reported: bool,
}

/// Reloads asked for anywhere: the latest known (told to the peers), and the latest done here.
#[derive(Debug)]
struct ReloadMarks {
    latest: Option<Stamp>,
    applied: Stamp,
}

/// The cluster's side of this instance. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    me: String,
    admin: Option<SocketAddr>,
    clock: Clock,
    settings: ArcSwap<Settings>,
    drains: watch::Receiver<Arc<Drains>>,
    peers: Mutex<BTreeMap<SocketAddr, PeerState>>,
    reload: Mutex<ReloadMarks>,
    /// Held while this instance reloads: a reload told of twice (forwarded, and seen in a
    /// view) runs once, and "already done" is only said once it is.
    reloading: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
    events: EventLog,
    /// Bumped to make every poller poll now: after a reload, and after a change that makes
    /// the views held stale.
    wake: watch::Sender<u64>,
}

impl Cluster {
    /// The cluster of an instance named `me` with its admin listener at `admin`, started with
    /// `loaded`; `drains` follows the health task's drains.
    pub fn new(
        me: String,
        admin: Option<SocketAddr>,
        loaded: &Loaded,
        clock: Clock,
        drains: watch::Receiver<Arc<Drains>>,
        metrics: Arc<Metrics>,
        events: EventLog,
    ) -> Self {
        let applied = clock.now();
        let cluster = Self {
            inner: Arc::new(Inner {
                me,
                admin,
                clock,
                settings: ArcSwap::from_pointee(Settings {
                    peers: Vec::new(),
                    token: None,
                    fingerprint: String::new(),
                    interval: Duration::from_secs(2),
                    bound: Duration::from_secs(4),
                    unreachable_after: Duration::from_secs(60),
                }),
                drains,
                peers: Mutex::new(BTreeMap::new()),
                reload: Mutex::new(ReloadMarks {
                    latest: None,
                    applied,
                }),
                reloading: tokio::sync::Mutex::new(()),
                metrics,
                events,
                wake: watch::Sender::new(0),
            }),
        };
        cluster.reconfigure(loaded);
        cluster
    }

    /// This instance's name, as its peers know it.
    pub fn me(&self) -> &str {
        &self.inner.me
    }

    /// What the cluster runs with now.
    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.load_full()
    }

    /// Takes up a new configuration: its peers (keeping what is known of those that stay), its
    /// token, its fingerprint and probe timing; the next poll comes at once.
    pub fn reconfigure(&self, loaded: &Loaded) {
        let old = self.settings();
        let cluster = loaded.config.cluster.as_ref();
        let listed = cluster.map_or(&[][..], |c| &c.peers[..]);
        let addrs = match self.inner.admin {
            Some(admin) => members::others(listed, admin),
            None => listed.to_vec(),
        };
        let peers: Vec<PeerLink> = (addrs.iter())
            .map(|&a| match old.peers.iter().find(|l| l.addr == a) {
                Some(link) => link.clone(),
                None => PeerLink::new(a),
            })
            .collect();
        let probe = &loaded.config.probe;
        {
            let mut states = self.inner.peers.lock().expect("peers lock");
            states.retain(|a, _| addrs.contains(a));
            for &a in &addrs {
                states.entry(a).or_insert_with(|| PeerState {
                    link: Link::Unknown,
                    since: Instant::now(),
                    view: None,
                    reported: false,
                });
            }
        }
        self.inner.metrics.cluster.keep_peers(&addrs);
        let topology = &loaded.topology;
        let relays: Vec<(String, String)> = (topology.hosts.iter())
            .map(|h| (topology.sites[h.site].name.clone(), h.name.clone()))
            .collect();
        self.inner.metrics.cluster.keep_relays(&relays);
        self.inner.settings.store(Arc::new(Settings {
            peers,
            token: loaded.admin_token.clone(),
            fingerprint: fingerprint::of(
                &loaded.text,
                loaded.zone.text(),
                &fingerprint::pinned(&loaded.topology),
            ),
            interval: probe.interval,
            bound: probe.interval + 2 * probe.timeout,
            unreachable_after: cluster.map_or(old.unreachable_after, |c| c.unreachable_after),
        }));
        self.refresh();
    }

    /// Makes every poller ask its peer now: the views held are stale (a change was made or
    /// taken here, the config changed).
    pub fn refresh(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees each [`refresh`](Self::refresh).
    fn woken(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    /// The drains now, and the digest peers compare.
    pub fn drains(&self) -> (Arc<Drains>, String) {
        let drains = self.inner.drains.borrow().clone();
        let digest = fingerprint::sha256(drains.text().as_bytes());
        (drains, digest)
    }

    /// This instance's view, from its status `report`.
    pub fn own_view(&self, report: &crate::health::status::StatusReport) -> View {
        let (_, digest) = self.drains();
        let latest = self
            .inner
            .reload
            .lock()
            .expect("reload lock")
            .latest
            .clone();
        View::of(
            report,
            &self.inner.me,
            &self.settings().fingerprint,
            &digest,
            latest.as_ref(),
        )
    }

    /// Every peer's state now, by address.
    pub fn peer_states(&self) -> BTreeMap<SocketAddr, PeerState> {
        self.inner.peers.lock().expect("peers lock").clone()
    }

    /// A stamp for an operator's reload here, which becomes the latest known (the peers are
    /// told of it) and done.
    pub fn reload_asked(&self) -> Stamp {
        let stamp = self.inner.clock.now();
        let mut marks = self.inner.reload.lock().expect("reload lock");
        marks.latest = Some(stamp.clone());
        marks.applied = stamp.clone();
        stamp
    }

    /// An operator's reload here (after [`reload_asked`](Self::reload_asked)), never at the
    /// same time as one a peer told of.
    pub async fn reload_here(&self, control: &Control) -> Result<String, ControlError> {
        let _one = self.inner.reloading.lock().await;
        control.reload().await
    }

    /// A reload asked for elsewhere (`stamp`), done here unless this instance has reloaded (or
    /// started) since it was asked for: `None` then, else the reload's result.
    pub async fn catch_up_reload(
        &self,
        control: &Control,
        stamp: &Stamp,
    ) -> Result<Option<Result<String, ControlError>>, TooFarAhead> {
        let _one = self.inner.reloading.lock().await;
        if !self.take_reload(stamp)? {
            return Ok(None);
        }
        Ok(Some(control.reload().await))
    }

    /// Whether a reload asked for elsewhere (`stamp`) is yet to be done here (asked for after
    /// this instance's last reload or start); then it counts as done.
    fn take_reload(&self, stamp: &Stamp) -> Result<bool, TooFarAhead> {
        self.inner.clock.observe(stamp)?;
        let mut marks = self.inner.reload.lock().expect("reload lock");
        if marks.latest.as_ref().is_none_or(|l| stamp > l) {
            marks.latest = Some(stamp.clone());
        }
        if *stamp > marks.applied {
            marks.applied = stamp.clone();
            return Ok(true);
        }
        Ok(false)
    }

    fn events(&self) -> &EventLog {
        &self.inner.events
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
