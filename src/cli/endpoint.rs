//! How the admin clients reach the server: its control socket when the config names one that
//! this user may open, else its TCP listener; one HTTP/1.1 exchange (hyper) per request,
//! bounded by [`REQUEST_TIMEOUT`]. Every request carries what the server's gate asks of a
//! client that is not a web page: a `Host` naming the listener and `X-Smarthostd-Request`; over
//! TCP, the bearer token when there is one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::AdminToken;

/// Bound on one admin request; a reload waits for the new config to be checked.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: the event history at its longest is a few MiB.
const MAX_BODY: usize = 64 << 20;

/// Where the admin API is.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    /// The control socket: no token needed, file permissions decide.
    Socket(PathBuf),
    /// The TCP listener.
    Tcp(SocketAddr),
}

impl Endpoint {
    /// `target` on this endpoint, for a message.
    pub(super) fn describe(&self, target: &str) -> String {
        match self {
            Self::Socket(path) => format!("{target} on {}", path.display()),
            Self::Tcp(addr) => format!("http://{addr}{target}"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Socket(path) => write!(f, "{}", path.display()),
            Self::Tcp(addr) => write!(f, "http://{addr}"),
        }
    }
}

/// A status and a body.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
}

/// A reply, where it came from, and the endpoints passed over before it (with why).
#[derive(Debug)]
pub(super) struct Sent {
    pub(super) endpoint: Endpoint,
    pub(super) reply: Reply,
    pub(super) passed: Vec<(Endpoint, String)>,
}

/// The endpoints to try, in order, and what was learnt when one could not be used.
pub(super) struct Connector {
    endpoints: Vec<Endpoint>,
    token: Option<AdminToken>,
    runtime: tokio::runtime::Runtime,
}

/// Why a request got no reply.
#[derive(Debug)]
pub(super) struct Unreachable {
    /// Each endpoint tried, with what went wrong.
    pub(super) attempts: Vec<(Endpoint, String)>,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = (self.attempts.iter())
            .map(|(endpoint, why)| format!("{endpoint}: {why}"))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl Connector {
    /// Tries `endpoints` in order; `token` goes with requests over TCP.
    pub(super) fn new(
        endpoints: Vec<Endpoint>,
        token: Option<AdminToken>,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            endpoints,
            token,
            runtime,
        })
    }

    /// Sends `method path_and_query` to the first endpoint that takes a connection. Also
    /// returns the endpoints passed over, and why.
    pub(super) fn send(&self, method: Method, path_and_query: &str) -> Result<Sent, Unreachable> {
        let mut attempts = Vec::new();
        for endpoint in &self.endpoints {
            let outcome = self.runtime.block_on(async {
                tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    self.exchange(endpoint, method.clone(), path_and_query),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Late(format!(
                        "no answer within {}",
                        humantime::format_duration(REQUEST_TIMEOUT)
                    )))
                })
            });
            match outcome {
                Ok(reply) => {
                    return Ok(Sent {
                        endpoint: endpoint.clone(),
                        reply,
                        passed: attempts,
                    });
                }
                // Nothing was sent: the next endpoint may take it.
                Err(Failure::Connect(why)) => attempts.push((endpoint.clone(), why)),
                // Sent, maybe acted on: never sent again elsewhere.
                Err(Failure::Late(why)) => {
                    attempts.push((endpoint.clone(), why));
                    return Err(Unreachable { attempts });
                }
            }
        }
        Err(Unreachable { attempts })
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path_and_query: &str,
    ) -> Result<Reply, Failure> {
        let connect = |e: std::io::Error| Failure::Connect(e.to_string());
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, host_header(endpoint))
            .header(crate::admin::REQUEST_HEADER, "1")
            .header(
                header::USER_AGENT,
                concat!("smarthostd/", env!("CARGO_PKG_VERSION")),
            );
        if let (Endpoint::Tcp(_), Some(token)) = (endpoint, &self.token) {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let request = request
            .body(Body::empty())
            .map_err(|e| Failure::Connect(format!("cannot make the request: {e}")))?;
        match endpoint {
            Endpoint::Socket(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect)?;
                one_exchange(stream, request).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect)?;
                one_exchange(stream, request).await
            }
        }
    }
}

enum Failure {
    /// No connection: nothing was sent.
    Connect(String),
    /// The request may have been sent.
    Late(String),
}

/// The `Host` the server's gate accepts: `localhost` on the socket and for a loopback address
/// (which also passes through an `ssh -L` tunnel to another address), else the address.
fn host_header(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Socket(_) => "localhost".into(),
        Endpoint::Tcp(addr) if addr.ip().is_loopback() => format!("localhost:{}", addr.port()),
        Endpoint::Tcp(addr) => addr.to_string(),
    }
}

async fn one_exchange<S>(stream: S, request: Request<Body>) -> Result<Reply, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let late = |e: &dyn std::fmt::Display| Failure::Late(e.to_string());
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| late(&e))?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY)
        .await
        .map_err(|e| late(&e))?;
    drop(sender);
    driver.abort();
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// What a path segment keeps as is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `segment` for a request path, percent-encoded.
pub(super) fn path_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `pairs` as a query string, `?` included; empty when there are none.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("?{encoded}")
}

/// The group that owns `path`'s folder, by name: who may open a socket in it.
pub(super) fn folder_group(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent()?;
    let gid = std::fs::metadata(dir).ok()?.gid();
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)).ok()??;
    Some(group.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_named_localhost_so_that_tunnels_pass() {
        let tcp = |a: &str| Endpoint::Tcp(a.parse().unwrap());
        assert_eq!(host_header(&tcp("127.0.0.1:8053")), "localhost:8053");
        assert_eq!(host_header(&tcp("[::1]:9000")), "localhost:9000");
        assert_eq!(host_header(&tcp("10.0.0.53:8053")), "10.0.0.53:8053");
        assert_eq!(
            host_header(&tcp("[2001:db8::53]:8053")),
            "[2001:db8::53]:8053"
        );
        assert_eq!(host_header(&Endpoint::Socket("/run/x".into())), "localhost");
    }

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(path_segment("mail-1.x_y~"), "mail-1.x_y~");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("since", "1h"), ("site", "a&b")]),
            "?since=1h&site=a%26b"
        );
    }
}
