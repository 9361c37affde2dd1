//! Smart hosts named by DNS name (`fqdn = "relay1.isp.example"`): resolved with
//! hickory-resolver at start and again when the answer's TTL runs out. A failed resolution
//! keeps the last known addresses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::health::Command;

/// Re-resolve no sooner than this, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_secs(2);
/// Re-resolve at least this often.
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// After a failure, try again this soon.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Bound on one resolution.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver using `nameservers` (UDP and TCP), or the system configuration when empty.
pub fn resolver_for(nameservers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let builder = if nameservers.is_empty() {
        Resolver::builder(provider)
            .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?
    } else {
        let servers = nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        Resolver::builder_with_config(ResolverConfig::from_parts(None, vec![], servers), provider)
    };
    builder.build().map_err(|e| e.to_string())
}

/// One DNS-named host to keep resolved.
pub struct Job {
    pub epoch: u64,
    pub host: usize,
    /// `site/host`, for logs.
    pub key: String,
    pub target: Name,
    pub nameservers: Vec<SocketAddr>,
}

/// Resolves `job.target` until `cancel`, sending each result to the health task.
pub fn spawn(
    tracker: &TaskTracker,
    job: Job,
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        tokio::select! {
            () = run(job, commands) => {}
            () = cancel.cancelled() => {}
        }
    });
}

async fn run(job: Job, commands: mpsc::Sender<Command>) {
    let resolver = match resolver_for(&job.nameservers) {
        Ok(r) => r,
        Err(error) => {
            warn!(host = %job.key, %error, "cannot resolve DNS-named smart hosts");
            return;
        }
    };
    loop {
        let wait = match tokio::time::timeout(
            RESOLVE_TIMEOUT,
            resolver.lookup_ip(job.target.clone()),
        )
        .await
        {
            Ok(Ok(lookup)) => {
                let addresses: Vec<IpAddr> = lookup.iter().collect();
                let ttl = lookup
                    .valid_until()
                    .saturating_duration_since(std::time::Instant::now());
                let command = Command::Addresses {
                    epoch: job.epoch,
                    host: job.host,
                    addresses,
                };
                if commands.send(command).await.is_err() {
                    return;
                }
                ttl.clamp(MIN_REFRESH, MAX_REFRESH)
            }
            Ok(Err(error)) => {
                warn!(host = %job.key, target = %job.target, %error, "resolution failed; keeping the last known addresses");
                RETRY_AFTER_FAILURE
            }
            Err(_) => {
                warn!(host = %job.key, target = %job.target, "resolution timed out; keeping the last known addresses");
                RETRY_AFTER_FAILURE
            }
        };
        tokio::time::sleep(wait).await;
    }
}
