//! The admin listeners' connections: HTTP/1.1 (hyper) with bounds on every wait, so that no
//! client can hold the admin port — idle keep-alives and half-sent requests (slowloris) are
//! closed after [`HEADER_TIMEOUT`], a client that does not read its response after
//! [`WRITE_TIMEOUT`], and when every slot is taken the least active connection makes room. The
//! TCP listener and the control socket are served alike; each request is marked with the
//! [`Peer`] it came in on, for the gate.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::debug;

use super::guard::Peer;
use crate::connections::Slots;
use crate::connections::accept::Backoff;
use crate::metrics::Metrics;

/// A request's headers, and the next request on a kept-alive connection, must arrive within
/// this time.
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A response must be taken by the client within this time.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a request came from: the client's address over TCP, nothing on the control socket.
/// Put on each request by the listener, for logs of refused peer requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote(pub Option<SocketAddr>);

/// Refused peer requests are logged at most this often: a flood of them is one line.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

impl Remote {
    /// Logs a refused peer request (`what`), never its token, at most once per
    /// `REFUSAL_LOG_EVERY`.
    pub fn refused(&self, what: &str) {
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        static QUIET: AtomicU64 = AtomicU64::new(0);
        let mut last = LAST.lock().expect("refusal log lock");
        if last.is_some_and(|t| t.elapsed() < REFUSAL_LOG_EVERY) {
            QUIET.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let unlogged = QUIET.swap(0, Ordering::Relaxed);
        tracing::warn!(from = %self, unlogged, "{what} was refused: is an instance configured with another admin token?");
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("the control socket"),
        }
    }
}

/// A listener the admin API is served on.
pub(super) trait Accept: Send + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, and the client's address when it has one.
    fn next(&self) -> impl Future<Output = io::Result<(Self::Stream, Option<SocketAddr>)>> + Send;
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn next(&self) -> io::Result<(Self::Stream, Option<SocketAddr>)> {
        self.accept()
            .await
            .map(|(stream, addr)| (stream, Some(addr)))
    }
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn next(&self) -> io::Result<(Self::Stream, Option<SocketAddr>)> {
        self.accept().await.map(|(stream, _)| (stream, None))
    }
}

/// Serves `app` on `listener` until `shutdown`, one slot per connection; `name` labels the
/// listener in metrics and logs.
pub(super) async fn serve<L: Accept>(
    listener: L,
    name: &'static str,
    peer: Peer,
    app: Router,
    slots: Arc<Slots>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let mut backoff = Backoff::default();
    loop {
        let (stream, remote) = tokio::select! {
            r = listener.next() => match r {
                Ok(accepted) => {
                    backoff.succeeded();
                    accepted
                }
                Err(error) => {
                    metrics.accept_error(name);
                    backoff.pause(name, &error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (slot, evicted) = slots.admit();
        if evicted {
            metrics.evicted(name);
        }
        let app = app.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let progress = slot.progress.clone();
            let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                let progress = progress.clone();
                request.extensions_mut().insert(peer);
                request.extensions_mut().insert(Remote(remote));
                let response = app.clone().oneshot(request);
                async move {
                    let response = response.await;
                    progress.touch();
                    response
                }
            });
            let io = TokioIo::new(WriteDeadline::new(stream, WRITE_TIMEOUT));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                r = connection => {
                    if let Err(error) = r {
                        debug!(listener = name, %error, "admin connection ended");
                    }
                }
                () = slot.evicted.cancelled() => debug!(listener = name, "admin connection closed for a new client"),
                () = shutdown.cancelled() => {}
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// A stream whose writes fail once they have waited [`WRITE_TIMEOUT`] for a client that does
/// not read.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
        }
    }

    /// On `Pending`, starts (or checks) the deadline; on anything else, clears it.
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
