//! DNS over TCP (RFC 7766): length-prefixed messages, pipelined, with limits on concurrent
//! connections, idle time and queries per connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::{DnsShared, handle};
use crate::admin::metrics::DnsStats;

/// Queries already received that are still answered once a connection reaches its limit.
pub const CLOSING_GRACE: usize = 1024;

/// TCP limits from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub idle_timeout: Duration,
    pub max_queries: usize,
}

/// Accepts connections on `listener` until `shutdown`; `slots` bounds concurrent connections
/// across all listeners.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<DnsShared>,
    limits: TcpLimits,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    // One set of counters per listener, shared by its connections.
    let stats = shared.metrics.dns_stats(false);
    loop {
        // Wait for a free slot before accepting: excess clients wait in the kernel backlog.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(error) => {
                    debug!(%error, "tcp accept error");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let shared = shared.clone();
        let stats = stats.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = connection(stream, src, &shared, &stats, limits) => {
                    if let Err(error) = r {
                        debug!(%error, %src, "tcp connection ended");
                    }
                }
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
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(4096, read);
    let mut buf = vec![0u8; 512];
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
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
        let start = std::time::Instant::now();
        let Some(outcome) = handle(shared, &buf, src, true, &mut out) else {
            continue;
        };
        stats.record(&outcome, true, start.elapsed());
        if tracing::enabled!(target: "smarthostd::query", tracing::Level::DEBUG) {
            super::log_query(&src, true, &outcome);
        }
        framed.clear();
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        write.write_all(&framed).await?;
    }
    write.shutdown().await
}
