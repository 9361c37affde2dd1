//! The peer task: at start, then every probe interval (and at once after a reload or a
//! change), it asks every peer for its view, each peer on its own schedule and each request
//! bounded ([`peer`](super::peer)). With a view in hand it
//!
//! - pulls the peer's drains when their digest differs from this instance's, and merges them
//!   (anti-entropy: merging is commutative and idempotent, so instances that keep doing this
//!   converge, and a restarted or cut-off instance catches up within one poll);
//! - pushes every drain to a peer that has just come back;
//! - reloads this instance's config when the peer knows of a reload asked for after this
//!   instance's last one (made while this one was cut off);
//! - compares verdicts ([`disagree`](super::disagree)).
//!
//! A peer unreachable for `cluster.unreachable_after` (a minute) is an event and a WARN line,
//! and so is its return; `smarthostd_peer_up{peer}` follows every poll. The task runs on the
//! admin side of the server, never in the health task or on the DNS path: a peer that hangs
//! holds only its own request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::disagree::{Change, Tracker};
use super::peer::{PeerError, PeerLink, REQUEST_TIMEOUT};
use super::wire::{View, parse_drains};
use super::{Cluster, Link};
use crate::admin::Control;
use crate::config::AdminToken;
use crate::events::Event;

/// Runs the peer task until `shutdown`: a poller per peer, each on its own schedule (a peer
/// that hangs delays no other), and every probe interval the comparison of verdicts.
pub(crate) async fn run(cluster: Cluster, control: Control, shutdown: CancellationToken) {
    let mut tracker = Tracker::default();
    let mut woken = cluster.woken();
    let mut pollers = tokio::task::JoinSet::new();
    let mut running: HashMap<SocketAddr, AbortHandle> = HashMap::new();
    loop {
        let settings = cluster.settings();
        running.retain(|addr, task| {
            let kept = settings.peers.iter().any(|l| l.addr == *addr);
            if !kept {
                task.abort();
            }
            kept
        });
        for link in &settings.peers {
            running.entry(link.addr).or_insert_with(|| {
                pollers.spawn(poller(cluster.clone(), control.clone(), link.clone()))
            });
        }
        while pollers.try_join_next().is_some() {}
        tokio::select! {
            () = cluster.compare(&control, &mut tracker) => {}
            () = shutdown.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(settings.interval) => {}
            _ = woken.changed() => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// After a poll that found a peer's drains unlike this instance's even after merging them (the
/// peer has yet to take a change, which it is being sent or will pull), the peer is asked again
/// this soon, rather than a probe interval later, so that the view held of it follows...
const CATCH_UP_POLL: Duration = Duration::from_millis(100);
/// ...this many times in a row at most (2 s: a busy peer may take the change later than this
/// instance did, and its view is then stale for a probe interval): a peer that stays different
/// (one that refuses an entry) is then polled at the usual pace.
const CATCH_UP_POLLS: u32 = 20;

/// Polls one peer every probe interval (at once after a reload or a change), for as long as it
/// is listed.
async fn poller(cluster: Cluster, control: Control, link: PeerLink) {
    let mut woken = cluster.woken();
    let mut quick = 0;
    loop {
        woken.mark_unchanged();
        let settings = cluster.settings();
        let mut wait = settings.interval;
        if let Some(token) = &settings.token {
            let (_, digest) = cluster.drains();
            let answer = cluster.poll(&control, &link, token, &digest).await;
            let behind = (answer.as_ref()).is_ok_and(|v| v.drains != cluster.drains().1);
            if behind && quick < CATCH_UP_POLLS {
                quick += 1;
                wait = CATCH_UP_POLL.min(wait);
            } else if !behind {
                quick = 0;
            }
            if cluster.record(link.addr, &answer)
                && let Err(e) = cluster.push_drains(&link).await
            {
                warn!(peer = %link.addr, error = %e, "cannot send the drains to a peer that came back");
            }
        }
        // A refresh during the poll makes the next one come at once.
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = woken.changed() => {}
        }
    }
}

impl Cluster {
    /// Compares this instance's verdicts with those of every peer that is up.
    async fn compare(&self, control: &Control, tracker: &mut Tracker) {
        let Some(report) = control.status_now().await else {
            return;
        };
        let ours = self.own_view(&report);
        let states = self.peer_states();
        let fresh: Vec<(String, Arc<View>)> = (states.iter())
            .filter(|(_, s)| s.link == Link::Up)
            .filter_map(|(addr, s)| Some((addr.to_string(), s.view.as_ref()?.0.clone())))
            .collect();
        let peers: Vec<(&str, &View)> = fresh.iter().map(|(n, v)| (n.as_str(), &**v)).collect();
        let bound = self.settings().bound;
        let (changes, counts) = tracker.observe(Instant::now(), bound, &ours, &peers);
        self.metrics().cluster.set_disagreements(&counts);
        for change in changes {
            match change {
                Change::Began { site, host, detail } => {
                    warn!(%site, %host, views = %detail, "instances disagree about a relay");
                    self.events()
                        .record(Event::disagreement(&site, &host, true, &detail));
                }
                Change::Ended { site, host, lasted } => {
                    let why = format!(
                        "every instance agrees again, after {}",
                        humantime::format_duration(Duration::from_secs(lasted.as_secs()))
                    );
                    info!(%site, %host, "{why}");
                    self.events()
                        .record(Event::disagreement(&site, &host, false, &why));
                }
            }
        }
    }

    /// Asks `link` for its view; pulls and merges its drains when they differ from `digest`
    /// (this instance's); reloads when it knows of a reload this instance has not done.
    async fn poll(
        &self,
        control: &Control,
        link: &PeerLink,
        token: &AdminToken,
        digest: &str,
    ) -> Result<Arc<View>, PeerError> {
        let get = |path| link.request(token, Method::GET, path, None, REQUEST_TIMEOUT);
        let view = View::parse(&get("/cluster/view").await?).map_err(PeerError::Failed)?;
        if view.drains != digest {
            let drains = parse_drains(&get("/cluster/drains").await?).map_err(PeerError::Failed)?;
            if let Some(outcome) = control.merge(drains, link.addr.to_string()).await
                && outcome.changed > 0
            {
                info!(peer = %link.addr, changed = outcome.changed, "drains taken from a peer");
            }
        }
        if let Some(stamp) = view.reload_stamp() {
            match self.catch_up_reload(control, &stamp).await {
                Ok(Some(Ok(_))) => {
                    info!(peer = %link.addr, asked_on = %stamp.origin, "reloaded: a peer told of a reload asked for while this instance was away");
                }
                Ok(Some(Err(e))) => {
                    warn!(peer = %link.addr, error = %e, "the reload a peer told of failed; the running configuration stays");
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(peer = %link.addr, error = %e, "a reload from a peer was not taken")
                }
            }
        }
        Ok(Arc::new(view))
    }

    /// Records how a poll of `addr` went; whether the peer has just come back.
    fn record(&self, addr: SocketAddr, answer: &Result<Arc<View>, PeerError>) -> bool {
        let now = Instant::now();
        let link = match answer {
            Ok(_) => Link::Up,
            Err(PeerError::Refused(why)) => Link::Refused(why.clone()),
            Err(PeerError::Unreachable(why) | PeerError::Failed(why)) => {
                Link::Unreachable(why.clone())
            }
        };
        let settings = self.settings();
        let differs = answer
            .as_ref()
            .is_ok_and(|v| v.fingerprint != settings.fingerprint);
        let mut peers = self.inner.peers.lock().expect("peers lock");
        // A peer a reload has just removed: its series are gone, and stay gone.
        let Some(state) = peers.get_mut(&addr) else {
            return false;
        };
        (self.metrics().cluster).set_peer(addr, link == Link::Up, differs);
        let was_up = state.link == Link::Up;
        let is_up = link == Link::Up;
        if let Ok(view) = answer {
            state.view = Some((view.clone(), now));
        }
        if was_up != is_up || state.link == Link::Unknown {
            state.since = now;
        }
        if let (Link::Refused(why), false) = (&link, matches!(state.link, Link::Refused(_))) {
            warn!(peer = %addr, problem = %why, "a peer refuses this instance's token: it will get no change until every instance has the same admin token");
        }
        let came_back = is_up && !was_up;
        if came_back && state.reported {
            state.reported = false;
            info!(peer = %addr, "a peer is reachable again");
            self.events()
                .record(Event::peer(&addr.to_string(), false, "reachable again"));
        }
        let after = settings.unreachable_after;
        if !is_up && !state.reported && now.duration_since(state.since) >= after {
            state.reported = true;
            let why = match &link {
                Link::Refused(why) | Link::Unreachable(why) => why.clone(),
                _ => String::new(),
            };
            let after = humantime::format_duration(after);
            warn!(peer = %addr, problem = %why, %after, "a peer has been unreachable for too long");
            self.events()
                .record(Event::peer(&addr.to_string(), true, &why));
        }
        state.link = link;
        came_back
    }
}
