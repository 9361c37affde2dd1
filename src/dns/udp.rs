//! The UDP loop: one task per socket, each datagram answered inline (the answer path does no
//! I/O and takes no lock, so there is nothing to gain from a task per datagram).

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::rrl::{Verdict, truncate_to_question};
use super::{DnsShared, handle};

/// The largest datagram read; anything longer is truncated by the kernel and fails to parse.
const MAX_DATAGRAM: usize = 65_535;

/// Answers datagrams on `socket` until `shutdown`.
pub async fn serve(socket: UdpSocket, shared: Arc<DnsShared>, shutdown: CancellationToken) {
    let stats = shared.metrics.dns_stats();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(4096);
    loop {
        let (len, src) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(error) => {
                    // ICMP errors from earlier sends surface here on some systems: not fatal.
                    debug!(%error, "udp receive error");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        if src.port() == 0 {
            continue;
        }
        let start = Instant::now();
        let Some(outcome) = handle(&shared, &buf[..len], src, false, &mut out) else {
            continue;
        };
        if let Some(limiter) = &shared.rate_limiter {
            match limiter.check(src.ip()) {
                Verdict::Send => {}
                Verdict::Slip => {
                    stats.record_rate_limited(true);
                    truncate_to_question(&mut out, outcome.question_len);
                }
                Verdict::Drop => {
                    stats.record_rate_limited(false);
                    continue;
                }
            }
        }
        stats.record(&outcome, false, start.elapsed());
        if let Err(error) = socket.send_to(&out, src).await {
            warn!(%error, %src, "udp send failed");
        }
    }
}
