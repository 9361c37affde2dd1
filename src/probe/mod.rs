//! Probes: one task per smart-host address, speaking SMTP, reporting each result to the health
//! task and waiting for it to say when to probe next.
//!
//! - [`smtp`]: one probe as a polite SMTP client, over a `session` that holds each reply to
//!   the command before it; [`reply`]: the reply parser, where a relay's words enter; a
//!   pinned relay's chain matched against its TLSA records; [`failure`]: why a probe failed,
//!   and whether a DANE sender would refuse the relay for it.
//! - [`tls`]: rustls settings for STARTTLS probes, which always check the handshake signature.
//! - [`shown`]: what a relay presents over STARTTLS (`smarthostd tlsa`).
//! - [`spawn`]: the per-address loop, bounded by a shared concurrency cap.
//! - [`resolve`]: the addresses of hosts named by DNS, kept fresh.

pub(crate) mod failure;
pub mod reply;
pub(crate) mod resolve;
mod session;
pub(crate) mod shown;
pub mod smtp;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use failure::{DaneFailure, Failed};
pub use smtp::{Passed, Pinned, ProbeSettings};

/// One address to probe.
#[derive(Debug, Clone)]
pub struct Target {
    /// The probe task's id, unique for the process's life: a reload keeps the tasks of
    /// addresses that stay, so reports carry this rather than a host's place in a config.
    pub id: u64,
    /// The address to connect to.
    pub addr: IpAddr,
    /// The SMTP port (`port`, default 25).
    pub port: u16,
    /// The interface of a link-local IPv6 address (0 for any other address).
    pub scope_id: u32,
    /// How to probe: the step timeout, the EHLO name, STARTTLS and what its certificate must carry.
    pub settings: Arc<ProbeSettings>,
}

/// The result of one probe, sent to the health task.
#[derive(Debug)]
pub struct ProbeReport {
    /// The probe task's id ([`Target::id`]).
    pub id: u64,
    /// The address probed.
    pub addr: IpAddr,
    /// How a good probe passed, or why it failed.
    pub result: Result<Passed, Failed>,
    /// How long the probe took, good or bad.
    pub elapsed: Duration,
    /// When the probe ended: the time the health task judges it at.
    pub at: Instant,
    /// The health task answers with the delay before the next probe.
    pub next: oneshot::Sender<Duration>,
}

/// What the probe tasks share.
#[derive(Clone)]
pub struct ProbeContext {
    /// Where each probe sends its result: the health task.
    pub reports: mpsc::Sender<ProbeReport>,
    /// Bounds the probes in flight across all hosts.
    pub permits: Arc<Semaphore>,
    /// Every probe task, so that shutdown can wait for them.
    pub tracker: TaskTracker,
}

/// Starts probing `target` after `first_delay`, until `cancel`; the returned `Notify` brings
/// the next probe forward.
pub fn spawn(
    cx: &ProbeContext,
    target: Target,
    first_delay: Duration,
    fallback_interval: Duration,
    cancel: CancellationToken,
) -> Arc<Notify> {
    let cx2 = cx.clone();
    let wake = Arc::new(Notify::new());
    let wake2 = wake.clone();
    cx.tracker.spawn(async move {
        tokio::select! {
            () = run(cx2, target, first_delay, fallback_interval, &wake2) => {}
            () = cancel.cancelled() => {}
        }
    });
    wake
}

async fn run(
    cx: ProbeContext,
    target: Target,
    first_delay: Duration,
    fallback_interval: Duration,
    wake: &Notify,
) {
    let addr = match target.addr {
        IpAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(
            v6,
            target.port,
            0,
            target.scope_id,
        )),
        v4 => SocketAddr::new(v4, target.port),
    };
    let mut delay = first_delay;
    loop {
        // The health task may ask for the next probe early (a sibling failed).
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = wake.notified() => {}
        }
        let Ok(permit) = cx.permits.acquire().await else {
            return;
        };
        let start = Instant::now();
        let result = smtp::probe(addr, &target.settings).await;
        let elapsed = start.elapsed();
        drop(permit);
        let (next, answer) = oneshot::channel();
        let report = ProbeReport {
            id: target.id,
            addr: target.addr,
            result,
            elapsed,
            at: Instant::now(),
            next,
        };
        if cx.reports.send(report).await.is_err() {
            return;
        }
        delay = answer.await.unwrap_or(fallback_interval);
    }
}
