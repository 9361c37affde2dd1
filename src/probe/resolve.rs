//! Smart hosts named by DNS name (`fqdn = "relay1.isp.example"`): resolved with
//! hickory-resolver at start and again when the answer's TTL runs out. A failed resolution
//! keeps the last known addresses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::network_text;
use crate::resolver::resolver_for;

/// Re-resolve no sooner than this, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_secs(2);
/// Re-resolve at least this often.
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// After a failure, try again this soon.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Until a name has resolved once, try again this soon: there are no addresses to fall back on.
const RETRY_UNTIL_RESOLVED: Duration = Duration::from_secs(5);
/// Bound on one resolution.
pub(crate) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest resolution error kept.
const ERROR_CHARS: usize = 200;

/// One DNS-named host to keep resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// `site/host`.
    pub key: String,
    /// The name to resolve (the host's `fqdn`).
    pub target: Name,
    /// The resolvers to ask (`probe.resolver`); empty: the system's.
    pub nameservers: Vec<SocketAddr>,
}

/// One resolution of a job's name, good or failed.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// The job's `site/host`.
    pub key: String,
    /// The name resolved.
    pub target: Name,
    /// The addresses, or why there are none this time.
    pub result: Result<Vec<IpAddr>, String>,
}

/// Resolves `job.target` until `cancel`, sending each result on `results`.
pub(crate) fn spawn(
    tracker: &TaskTracker,
    job: Job,
    results: mpsc::Sender<Resolution>,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        tokio::select! {
            () = run(job, results) => {}
            () = cancel.cancelled() => {}
        }
    });
}

async fn run(job: Job, results: mpsc::Sender<Resolution>) {
    let mut resolved_once = false;
    loop {
        let (result, mut wait) = resolve_once(&job).await;
        resolved_once |= result.is_ok();
        if !resolved_once {
            wait = wait.min(RETRY_UNTIL_RESOLVED);
        }
        let resolution = Resolution {
            key: job.key.clone(),
            target: job.target.clone(),
            result,
        };
        if results.send(resolution).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// One resolution, and how long until the next.
async fn resolve_once(job: &Job) -> (Result<Vec<IpAddr>, String>, Duration) {
    let resolver = match resolver_for(&job.nameservers) {
        Ok(r) => r,
        Err(error) => return (Err(error.to_string()), RETRY_AFTER_FAILURE),
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, resolver.lookup_ip(job.target.clone())).await {
        Ok(Ok(lookup)) => {
            let addresses: Vec<IpAddr> = lookup.iter().collect();
            let ttl = lookup
                .valid_until()
                .saturating_duration_since(std::time::Instant::now());
            if addresses.is_empty() {
                return (Err("no addresses".into()), RETRY_AFTER_FAILURE);
            }
            (Ok(addresses), ttl.clamp(MIN_REFRESH, MAX_REFRESH))
        }
        // The resolver's words may quote what a name server sent: made safe here, where they
        // enter (a log line, the status).
        Ok(Err(error)) => (
            Err(network_text::clean(&error.to_string(), ERROR_CHARS)),
            RETRY_AFTER_FAILURE,
        ),
        Err(_) => (
            Err(format!(
                "no answer within {}",
                humantime::format_duration(RESOLVE_TIMEOUT)
            )),
            RETRY_AFTER_FAILURE,
        ),
    }
}
