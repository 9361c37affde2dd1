//! The checks of one configuration: every `interval`, each egress address on each list, at
//! most [`LOOKUPS_IN_FLIGHT`] at once, each result sent to the health task as it comes.
//!
//! They run on the probe runtime (the health task's thread) as tasks of their own with a
//! semaphore of their own: a slow list never holds a probe's permit, and the answers never
//! wait for a lookup. A round ends when its last lookup has (each bounded by the timeout), so
//! rounds never overlap.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lookup::{lookup, resolver};
use super::{LookupReport, Outcome, Watch};

/// Blocklist lookups in flight at once: a handful of addresses on a handful of lists, which
/// must never crowd the resolver that also serves the mail servers.
pub(crate) const LOOKUPS_IN_FLIGHT: usize = 8;

/// Checks `watch` until `cancel`, sending each result on `results`.
pub(crate) fn spawn(
    tracker: &TaskTracker,
    watch: Arc<Watch>,
    results: mpsc::Sender<LookupReport>,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        tokio::select! {
            () = run(watch, results) => {}
            () = cancel.cancelled() => {}
        }
    });
}

async fn run(watch: Arc<Watch>, results: mpsc::Sender<LookupReport>) {
    let resolver = resolver(&watch.resolver, watch.timeout).map(Arc::new);
    let permits = Arc::new(Semaphore::new(LOOKUPS_IN_FLIGHT));
    loop {
        let started = Instant::now();
        let mut round = JoinSet::new();
        for list in &watch.lists {
            for &address in &watch.addresses {
                let (resolver, permits, list) = (resolver.clone(), permits.clone(), list.clone());
                let timeout = watch.timeout;
                round.spawn(async move {
                    let outcome = match &resolver {
                        Ok(resolver) => {
                            let _permit = permits.acquire_owned().await;
                            lookup(resolver, &list, address, timeout).await
                        }
                        Err(error) => Outcome::Error(format!("no resolver: {error}")),
                    };
                    LookupReport {
                        address,
                        list: list.name,
                        outcome,
                        at: Instant::now(),
                    }
                });
            }
        }
        while let Some(done) = round.join_next().await {
            if let Ok(report) = done
                && results.send(report).await.is_err()
            {
                return;
            }
        }
        let wait = watch.interval.mul_f64(0.9 + 0.2 * fastrand::f64());
        tokio::time::sleep_until((started + wait).into()).await;
    }
}
