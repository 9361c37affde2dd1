//! What the health task keeps of the blocklist checks: the checks running, the book of
//! verdicts and standings, the sites checked, and the demotions the answers are built with.
//! What it does with each lookup is in `verdicts`.
//!
//! Lookups run beside the probes on this thread's runtime, as tasks of their own
//! ([`checker`]); their results arrive here on a channel of their own.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::answer::Demotions;
use crate::config::Action;
use crate::metrics::EgressLabels;
use crate::reputation::book::Book;
use crate::reputation::{LookupReport, Watch, checker};
use crate::topology::SiteId;

/// Lookup results queued for the health task before lookups wait for it.
const RESULT_QUEUE: usize = 256;

/// A site whose egress addresses are checked.
pub(super) struct Checked {
    pub(super) id: SiteId,
    pub(super) name: String,
    pub(super) egress: Vec<IpAddr>,
}

/// The blocklist side of the health task.
pub(super) struct Listings {
    results_tx: mpsc::Sender<LookupReport>,
    results: mpsc::Receiver<LookupReport>,
    /// The checks running, and what stops them.
    running: Option<(Arc<Watch>, CancellationToken)>,
    all: CancellationToken,
    pub(super) book: Book,
    pub(super) sites: Vec<Checked>,
    /// The names of the lists checked.
    pub(super) lists: Vec<Arc<str>>,
    pub(super) action: Action,
    pub(super) hold: Duration,
    /// What the answers are built with; brought up to date whenever a standing changes.
    pub(super) demotions: Demotions,
}

/// What wakes the health task for listings.
pub(super) enum ListingEvent {
    Lookup(LookupReport),
    /// A delisted site's hold may have run out.
    HoldEnded,
}

impl Listings {
    pub(super) fn new(all: CancellationToken) -> Self {
        let (results_tx, results) = mpsc::channel(RESULT_QUEUE);
        Self {
            results_tx,
            results,
            running: None,
            all,
            book: Book::default(),
            sites: Vec::new(),
            lists: Vec::new(),
            action: Action::Warn,
            hold: Duration::ZERO,
            demotions: Demotions::none(),
        }
    }

    /// The next lookup result, or the end of the first hold.
    pub(super) async fn next(&mut self) -> ListingEvent {
        let hold_end = self.book.next_hold_end();
        let hold = async {
            match hold_end {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(report) = self.results.recv() => ListingEvent::Lookup(report),
            () = hold => ListingEvent::HoldEnded,
        }
    }

    /// Runs the checks of `watch` (`None`: none), unless the same ones run already.
    pub(super) fn run(&mut self, watch: Option<Arc<Watch>>, tracker: &TaskTracker) {
        if let (Some((running, _)), Some(new)) = (&self.running, &watch)
            && running == new
        {
            return;
        }
        if let Some((_, cancel)) = self.running.take() {
            cancel.cancel();
        }
        if let Some(watch) = watch {
            let cancel = self.all.child_token();
            checker::spawn(
                tracker,
                watch.clone(),
                self.results_tx.clone(),
                cancel.clone(),
            );
            self.running = Some((watch, cancel));
        }
    }

    /// Stops the checks.
    pub(super) fn stop_all(&mut self) {
        self.all.cancel();
        self.running = None;
    }

    /// The sites checked for `address`.
    pub(super) fn sites_of(&self, address: IpAddr) -> Vec<String> {
        self.sites
            .iter()
            .filter(|s| s.egress.contains(&address))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Every (site, address, list) series of `smarthostd_egress_listed`.
    pub(super) fn series(&self) -> Vec<EgressLabels> {
        let mut out = Vec::new();
        for site in &self.sites {
            for address in &site.egress {
                for list in &self.lists {
                    out.push(EgressLabels {
                        site: site.name.clone(),
                        address: address.to_string(),
                        list: list.to_string(),
                    });
                }
            }
        }
        out
    }
}
