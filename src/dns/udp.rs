//! The UDP loop: one OS thread per socket (SO_REUSEPORT spreads datagrams over them), taking
//! up to [`BATCH`] datagrams per `recvmmsg` and sending their answers with one `sendmmsg`.
//!
//! Answers need no I/O and take no lock, so a thread never waits on anything but its socket;
//! batching turns two system calls per query into two per batch under load, which is where a
//! server this simple spends its time.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::reply_cache::ReplyCache;
use super::rrl::{Verdict, truncate_to_question};
use super::{DnsShared, answer_signed};
use crate::metrics::CookieSeen;

/// Datagrams taken per system call.
pub(crate) const BATCH: usize = 32;
/// The largest query read over UDP; a longer one is cut and answered FORMERR.
const MAX_QUERY: usize = 4096;
/// How often a waiting thread looks at the shutdown token.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// Starts a thread answering datagrams on `socket` until `shutdown`.
pub(crate) fn spawn(
    socket: std::net::UdpSocket,
    shared: Arc<DnsShared>,
    shutdown: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
    std::thread::Builder::new()
        .name("dns-udp".into())
        .spawn(move || serve(&socket, &shared, &shutdown))
}

fn serve(socket: &std::net::UdpSocket, shared: &DnsShared, shutdown: &CancellationToken) {
    let fd = socket.as_raw_fd();
    let stats = shared.metrics.dns_stats(true);
    let mut queries = vec![[0u8; MAX_QUERY]; BATCH];
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received: [(usize, Option<SockaddrStorage>); BATCH] = [(0, None); BATCH];
    let mut replies: [usize; BATCH] = [0; BATCH];
    let mut destinations: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
    let mut kept = ReplyCache::new();

    while !shutdown.is_cancelled() {
        let count = {
            let buffers: &mut [[u8; MAX_QUERY]; BATCH] =
                (&mut queries[..]).try_into().expect("BATCH buffers");
            let mut iovs = buffers.each_mut().map(|b| [IoSliceMut::new(b)]);
            match recvmmsg(
                fd,
                &mut recv_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for r in results {
                        received[n] = (r.bytes, r.address);
                        n += 1;
                    }
                    n
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(error) => {
                    warn!(%error, "udp receive error");
                    continue;
                }
            }
        };

        // One snapshot for the whole batch: no answer mixes two generations. One clock reading
        // too: every answer of the batch leaves with the same sendmmsg, so each waits as long as
        // the batch takes, and the rate limiter's second is the batch's.
        let snapshot = shared.snapshot.load();
        let mut sending = 0;
        let started = Instant::now();
        let second = shared.rate_limiter.as_ref().map(|l| l.second(started));
        for i in 0..count {
            let (len, address) = received[i];
            let Some(src) = address.as_ref().and_then(socket_addr) else {
                continue;
            };
            if src.port() == 0 {
                continue;
            }
            let raw = &queries[i][..len];
            let answer = kept.answer(&snapshot, raw, src.ip(), &mut answers[i], |out| {
                answer_signed(&snapshot, shared, raw, src, false, out)
            });
            let Some(outcome) = answer else { continue };
            stats.record_cookie(outcome.cookie);
            // A valid server cookie proves the source address: no spoofed flood sends one.
            if let (Some(limiter), Some(second)) = (&shared.rate_limiter, second)
                && outcome.cookie != CookieSeen::Valid
            {
                match limiter.check_at(src.ip(), second) {
                    Verdict::Send => {}
                    Verdict::Slip => {
                        stats.record_rate_limited(true);
                        truncate_to_question(&mut answers[i], outcome.question_len);
                    }
                    Verdict::Drop => {
                        stats.record_rate_limited(false);
                        continue;
                    }
                }
            }
            stats.record(&outcome.counted(), false);
            if tracing::enabled!(target: "smarthostd::query", tracing::Level::DEBUG) {
                super::log_query(&src, false, &outcome);
            }
            replies[sending] = i;
            destinations[sending] = address;
            sending += 1;
        }
        drop(snapshot);
        stats.record_duration(started.elapsed(), sending as u64);
        send_all(
            fd,
            &mut send_headers,
            &answers,
            &replies[..sending],
            &destinations[..sending],
        );
    }
}

/// Sends the answers at `replies` to `destinations`, retrying what a partial `sendmmsg` left.
fn send_all(
    fd: i32,
    headers: &mut MultiHeaders<SockaddrStorage>,
    answers: &[Vec<u8>],
    replies: &[usize],
    destinations: &[Option<SockaddrStorage>],
) {
    let mut done = 0;
    while done < replies.len() {
        let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|k| {
            let i = replies.get(done + k).copied();
            [IoSlice::new(i.map_or(&[][..], |i| &answers[i][..]))]
        });
        let pending = replies.len() - done;
        match sendmmsg(
            fd,
            headers,
            slices[..pending].iter(),
            &destinations[done..],
            [],
            MsgFlags::empty(),
        ) {
            Ok(results) => {
                let sent = results.count();
                if sent == 0 {
                    return;
                }
                done += sent;
            }
            Err(Errno::EINTR) => {}
            Err(error) => {
                // One bad destination must not cost the rest of the batch.
                warn!(%error, "udp send failed");
                done += 1;
            }
        }
    }
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}
