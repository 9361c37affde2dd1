//! One request to a peer's admin API: plain HTTP/1.1 (hyper) over TCP, passing the peer's gate
//! as the CLI does — `Host` naming the address dialled, `X-Smarthostd-Request`, the bearer
//! token — with a fresh nonce whose proof the answer must carry ([`proof`]).
//!
//! Bounded every way, so that a peer that is gone, hangs, floods or lies costs this instance
//! nothing but the request: [`CONNECT_TIMEOUT`], a whole-request limit, at most [`IN_FLIGHT`]
//! requests to one peer at a time, and answers of at most [`MAX_BODY`] bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, header};
use tokio::sync::Semaphore;

use super::proof::{self, NONCE_HEADER, PROOF_HEADER};
use super::wire::clean;
use crate::config::AdminToken;

/// A peer's admin listener must take the connection within this time.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on a whole request for a view, the drains, or a change: connection, request, answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on a forwarded reload: the peer reads and checks its config before it answers.
pub(crate) const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests in flight to one peer at a time: the poll and one operator's change.
pub(crate) const IN_FLIGHT: usize = 2;
/// The largest answer read from a peer: a view of tens of thousands of relays.
pub(crate) const MAX_BODY: usize = 8 << 20;

/// Why a request to a peer got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// No connection, no answer in time, or the answer broke off: it may come back.
    Unreachable(String),
    /// The peer refused this instance's token, or its answer does not prove it holds the token.
    Refused(String),
    /// The peer answered with an error (its config does not load, it is stopping).
    Failed(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Refused(why) | Self::Failed(why) => f.write_str(why),
        }
    }
}

/// The way to one peer: its address and its share of requests in flight.
#[derive(Debug, Clone)]
pub struct PeerLink {
    /// The peer's admin listener, as `cluster.peers` names it.
    pub addr: SocketAddr,
    permits: Arc<Semaphore>,
}

impl PeerLink {
    /// The link to `addr`, allowing [`IN_FLIGHT`] requests at a time.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Sends `method path` (with `body`, a JSON or text document) under `token`, and returns
    /// the answer's body once its proof holds; the whole exchange takes at most `limit`.
    pub async fn request(
        &self,
        token: &AdminToken,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        limit: Duration,
    ) -> Result<Bytes, PeerError> {
        let exchange = async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| PeerError::Unreachable("this instance is stopping".into()))?;
            self.exchange(token, method, path, body).await
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(PeerError::Unreachable(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            ))),
        }
    }

    async fn exchange(
        &self,
        token: &AdminToken,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, PeerError> {
        // An error of the HTTP client may describe what the peer sent: cleaned like its text.
        let unreachable = |e: &dyn std::fmt::Display| PeerError::Unreachable(clean(&e.to_string()));
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(self.addr))
                .await
                .map_err(|_| {
                    PeerError::Unreachable(format!(
                        "no connection within {}",
                        humantime::format_duration(CONNECT_TIMEOUT)
                    ))
                })?
                .map_err(|e| unreachable(&e))?;
        let nonce = proof::nonce();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            // The address literal dialled: the peer's gate serves its own address.
            .header(header::HOST, self.addr.to_string())
            .header(crate::admin::REQUEST_HEADER, "1")
            .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(NONCE_HEADER, &nonce)
            .header(
                header::USER_AGENT,
                concat!("smarthostd/", env!("CARGO_PKG_VERSION"), " (cluster)"),
            );
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .map_err(|e| unreachable(&e))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| unreachable(&e))?;
        let driver = tokio::spawn(connection);
        let answer = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(&e))?;
            let status = response.status().as_u16();
            let proof = (response.headers().get(PROOF_HEADER))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY)
                .await
                .map_err(|e| {
                    PeerError::Unreachable(format!(
                        "its answer broke off or passed {} MiB: {}",
                        MAX_BODY >> 20,
                        clean(&e.to_string())
                    ))
                })?;
            Ok::<_, PeerError>((status, proof, bytes))
        };
        let result = answer.await;
        driver.abort();
        let (status, proof, bytes) = result?;
        if status == 401 || status == 403 {
            return Err(PeerError::Refused(format!(
                "it refuses this instance's token ({status}: {}): give every instance the same admin token",
                message_of(&bytes)
            )));
        }
        let proven = proof.is_some_and(|p| proof::verify(token, &nonce, status, &bytes, &p));
        if !(200..300).contains(&status) {
            let message = message_of(&bytes);
            return Err(PeerError::Failed(if proven {
                format!("{status}: {message}")
            } else {
                format!("{status} (not from an instance of this cluster): {message}")
            }));
        }
        if !proven {
            return Err(PeerError::Refused(
                "its answer does not prove that it holds this instance's token: it is not an instance of this cluster, or its token differs".into(),
            ));
        }
        Ok(bytes)
    }
}

/// The message of an error answer: an [`ActionResult`](crate::admin::ActionResult)'s, or the
/// text itself, cleaned.
fn message_of(bytes: &[u8]) -> String {
    match serde_json::from_slice::<crate::admin::ActionResult>(bytes) {
        Ok(result) => clean(&result.message),
        Err(_) => clean(String::from_utf8_lossy(bytes).trim()),
    }
}
