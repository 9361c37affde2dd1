//! DNS over TCP (RFC 7766): length-prefixed messages, pipelined, with limits on concurrent
//! connections, idle time, write time and queries per connection.
//!
//! No client can hold the listener: a connection that sends nothing for the idle timeout, or
//! does not read its answers within it, is closed; when every slot is taken, the connection
//! that has made no progress for longest is closed to admit the new one (as Knot and unbound
//! do), so a client with a truncated UDP answer can always fetch it over TCP.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::{DnsShared, handle};
use crate::connections::accept::Backoff;
use crate::connections::{Progress, Slots};
use crate::metrics::DnsStats;

/// Queries already received that are still answered once a connection reaches its limit.
pub(crate) const CLOSING_GRACE: usize = 1024;

/// TCP limits from `[server]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    /// A client that sends nothing, or reads nothing we write, for this long is disconnected.
    pub idle_timeout: Duration,
    /// Queries a connection is waited for (`server.tcp_max_queries`); past them, only those already
    /// sent are answered (up to [`CLOSING_GRACE`]) and it is closed. Close to `usize::MAX` for no
    /// limit.
    pub max_queries: usize,
}

/// Accepts connections on `listener` until `shutdown`; `slots` bounds concurrent connections
/// across all listeners.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<DnsShared>,
    limits: TcpLimits,
    slots: Arc<Slots>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    // One set of counters per listener, shared by its connections.
    let stats = shared.metrics.dns_stats(false);
    let mut backoff = Backoff::default();
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => {
                    backoff.succeeded();
                    r
                }
                Err(error) => {
                    shared.metrics.accept_error("dns");
                    backoff.pause("dns", &error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (slot, evicted) = slots.admit();
        if evicted {
            shared.metrics.evicted("dns");
        }
        let shared = shared.clone();
        let stats = stats.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            tokio::select! {
                r = connection(stream, src, &shared, &stats, limits, &slot.progress) => {
                    if let Err(error) = r {
                        debug!(%error, %src, "tcp connection ended");
                    }
                }
                () = slot.evicted.cancelled() => debug!(%src, "tcp connection closed for a new client"),
                () = shutdown.cancelled() => {}
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn connection(
    stream: TcpStream,
    src: std::net::SocketAddr,
    shared: &DnsShared,
    stats: &DnsStats,
    limits: TcpLimits,
    progress: &Progress,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(4096, read);
    let mut buf = vec![0u8; 512];
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    for served in 0..limits.max_queries + CLOSING_GRACE {
        // Past the limit, answer only what the client has already sent, then close: a
        // pipelining client loses nothing it sent before the connection was full.
        let wait = if served < limits.max_queries {
            limits.idle_timeout
        } else {
            Duration::ZERO
        };
        let mut len = [0u8; 2];
        match tokio::time::timeout(wait, reader.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
        let len = usize::from(u16::from_be_bytes(len));
        buf.resize(len, 0);
        // A message, once started, must arrive within the idle timeout too.
        match tokio::time::timeout(limits.idle_timeout, reader.read_exact(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => break,
        };
        progress.touch();
        if crate::transfer::is_transfer(&buf) {
            let snapshot = shared.snapshot.load();
            let now = crate::dnssec::unix_seconds(std::time::SystemTime::now());
            let messages = shared.transfers.transfer(&snapshot, &buf, src, now);
            drop(snapshot);
            if !messages.is_empty() {
                for message in messages {
                    framed.clear();
                    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
                    framed.extend_from_slice(&message);
                    tokio::time::timeout(limits.idle_timeout, write.write_all(&framed))
                        .await
                        .map_err(|_| timed_out())??;
                    progress.touch();
                }
                continue;
            }
        }
        let start = std::time::Instant::now();
        let Some(outcome) = handle(shared, &buf, src, true, &mut out) else {
            continue;
        };
        stats.record_cookie(outcome.cookie);
        stats.record(&outcome.counted(), true);
        stats.record_duration(start.elapsed(), 1);
        if tracing::enabled!(target: "smarthostd::query", tracing::Level::DEBUG) {
            super::log_query(&src, true, &outcome);
        }
        framed.clear();
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        // A client that pipelines queries and never reads must not hold the task forever.
        tokio::time::timeout(limits.idle_timeout, write.write_all(&framed))
            .await
            .map_err(|_| timed_out())??;
        progress.touch();
    }
    tokio::time::timeout(limits.idle_timeout, write.shutdown())
        .await
        .map_err(|_| timed_out())?
}
