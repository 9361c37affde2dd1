//! The one gate in front of every admin route, present and future, on the TCP listener and the
//! control socket alike. In order:
//!
//! 1. **Host** (DNS rebinding): only a `Host` that names this listener is served — its address
//!    (any address when it listens on all of them), `localhost`, or a name in
//!    `server.admin_hosts`, in any letter case and with any port (a tunnel's). A page whose name
//!    an attacker rebinds to this address sends its own name and gets 421; a missing (HTTP/1.1),
//!    repeated or malformed `Host`, or an absolute-form target naming another host, gets 400.
//! 2. **Fetch Metadata** (OWASP CSRF cheat sheet): a state change (any method but GET, HEAD,
//!    OPTIONS) with `Sec-Fetch-Site` other than `same-origin` or `none` is refused; so is a
//!    cross-site read that is not a plain navigation (a `<script>` or `<img>` inclusion).
//! 3. **Origin**: a state change whose `Origin` is present and is not this listener's own
//!    (scheme, host and port of its `Host`) is refused, `null` included.
//! 4. **What a form cannot send**: over TCP with a token set, `Authorization: Bearer <token>`
//!    (401 without it); otherwise the header `X-Smarthostd-Request`, which no HTML form and no
//!    "simple" cross-origin request can carry, and which the CLI always sends. On the control
//!    socket, file permissions decide who may connect: no token is needed there.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::Control;
use super::host::{Authority, HostPart, parse_authority, parse_origin};
use crate::config::AdminToken;
use crate::loaded::Loaded;

/// The header the CLI sends with every request: a browser sends it only after a CORS
/// preflight, which this API never grants.
pub const REQUEST_HEADER: &str = "x-smarthostd-request";

/// What the gate checks against, swapped whole on every reload.
#[derive(Debug, Default)]
pub struct AdminPolicy {
    /// The token state changes over TCP need.
    token: Option<AdminToken>,
    /// `server.admin_hosts`, lower case, without trailing dots.
    names: Vec<String>,
}

impl AdminPolicy {
    /// The token state changes over TCP need, and peers share.
    pub(crate) fn token(&self) -> Option<&AdminToken> {
        self.token.as_ref()
    }

    /// Whether `headers` carry this policy's bearer token (false when it has none).
    pub(crate) fn bearer_holds(&self, headers: &HeaderMap) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bearer_matches(headers, t).is_ok())
    }

    /// The policy of a loaded configuration.
    pub fn new(loaded: &Loaded) -> Self {
        Self {
            token: loaded.admin_token.clone(),
            names: (loaded.config.server.admin_hosts.iter())
                .filter_map(|n| crate::config::host_name(n))
                .collect(),
        }
    }
}

/// Where a request came in, put on each request by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// The TCP listener bound to this address.
    Tcp(std::net::SocketAddr),
    /// The control socket: whoever could open it may act.
    Socket,
}

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No usable `Host`: 400.
    BadHost(&'static str),
    /// A name this listener does not answer to: 421.
    ForeignName,
    /// An address this listener does not listen on: 421.
    ForeignAddress,
    /// A cross-site read that is not a navigation: 403.
    CrossSiteRead,
    /// A state change a web page could have sent: 403, with what was wrong or missing.
    CrossSite(&'static str),
    /// A state change without the valid bearer token: 401.
    Token,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let text = |code, message: &str| (code, format!("smarthostd: {message}\n")).into_response();
        match self {
            Self::BadHost(why) => text(StatusCode::BAD_REQUEST, why),
            Self::ForeignName => text(
                StatusCode::MISDIRECTED_REQUEST,
                "this admin API answers only to its own address, to localhost and to the names \
                 in server.admin_hosts; to reach it by another name (a reverse proxy's, this \
                 machine's), add that name to server.admin_hosts and reload",
            ),
            Self::ForeignAddress => text(
                StatusCode::MISDIRECTED_REQUEST,
                "this admin API answers only to the address it listens on (server.admin), to \
                 localhost and to the names in server.admin_hosts: use one of those",
            ),
            Self::CrossSiteRead => text(
                StatusCode::FORBIDDEN,
                "a cross-site request other than a navigation is refused",
            ),
            Self::CrossSite(why) => {
                super::actions::action(StatusCode::FORBIDDEN, false, why.into())
            }
            Self::Token => super::actions::action(
                StatusCode::UNAUTHORIZED,
                false,
                "a valid bearer token is required".into(),
            ),
        }
    }
}

/// The gate as an axum middleware: the request goes on only when [`check`] lets it.
pub(super) async fn gate(State(control): State<Control>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<Peer>().copied();
    let verdict = match peer {
        Some(peer) => check(&request, peer, &control.admin_policy()),
        // Every listener marks its requests; one that did not is served nothing.
        None => Err(Refusal::BadHost("request of unknown origin")),
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::debug!(?refusal, "admin request refused");
            if request.uri().path().starts_with("/cluster/")
                && let Some(remote) = request.extensions().get::<super::Remote>()
            {
                remote.refused("a peer request");
            }
            refusal.into_response()
        }
    }
}

/// `Ok` when `request`, come in on `peer`, may be served under `policy`.
pub(super) fn check(
    request: &Request<Body>,
    peer: Peer,
    policy: &AdminPolicy,
) -> Result<(), Refusal> {
    let host = effective_host(request)?;
    if let Some(host) = &host {
        allowed_host(host, peer, policy)?;
    }
    let headers = request.headers();
    let fetch_site = single(headers, "sec-fetch-site")?;
    if is_safe(request.method()) {
        return read_isolation(headers, fetch_site);
    }
    if let Some(site) = fetch_site
        && !site.eq_ignore_ascii_case("same-origin")
        && !site.eq_ignore_ascii_case("none")
    {
        return Err(Refusal::CrossSite(
            "refused: Sec-Fetch-Site says a web page of another site sent this state change",
        ));
    }
    if let Some(origin) = single(headers, header::ORIGIN.as_str())? {
        let own = host
            .as_ref()
            .is_some_and(|host| parse_origin(origin).is_some_and(|origin| origin.is_of(host)));
        if !own {
            return Err(Refusal::CrossSite(
                "refused: the Origin of this state change is not this listener's own",
            ));
        }
    }
    match (&policy.token, peer) {
        (Some(token), Peer::Tcp(_)) => bearer_matches(headers, token),
        _ if headers.contains_key(REQUEST_HEADER) => Ok(()),
        _ => Err(Refusal::CrossSite(
            "refused: a state change needs the header X-Smarthostd-Request: 1 (the smarthostd \
             command sends it; a web page cannot), or the bearer token",
        )),
    }
}

/// The host the request is for: the absolute-form target's authority if any (RFC 9112 §3.2.2),
/// which must then agree with the `Host` header too, else the `Host` header.
fn effective_host(request: &Request<Body>) -> Result<Option<Authority>, Refusal> {
    let mut values = request.headers().get_all(header::HOST).iter();
    let header = match (values.next(), values.next()) {
        (Some(_), Some(_)) => return Err(Refusal::BadHost("more than one Host header")),
        (Some(value), None) => Some(
            value
                .to_str()
                .ok()
                .and_then(parse_authority)
                .ok_or(Refusal::BadHost("the Host header is not a host[:port]"))?,
        ),
        (None, _) => None,
    };
    let target = match request.uri().authority() {
        Some(a) => Some(parse_authority(a.as_str()).ok_or(Refusal::BadHost(
            "the request target's host is not a host[:port]",
        ))?),
        None => None,
    };
    if header.is_none() && target.is_none() && request.version() >= Version::HTTP_11 {
        return Err(Refusal::BadHost("HTTP/1.1 needs a Host header"));
    }
    if let (Some(header), Some(target)) = (&header, &target)
        && header.host != target.host
    {
        return Err(Refusal::BadHost(
            "the request target and the Host header name different hosts",
        ));
    }
    Ok(target.or(header))
}

/// Whether `host` names this listener.
fn allowed_host(host: &Authority, peer: Peer, policy: &AdminPolicy) -> Result<(), Refusal> {
    match (&host.host, peer) {
        // An address cannot be rebound: a page can only send one that reaches this listener.
        (HostPart::Ip(_), Peer::Socket) => Ok(()),
        (HostPart::Ip(ip), Peer::Tcp(listener)) => {
            if listener.ip().is_unspecified() || *ip == listener.ip() {
                Ok(())
            } else {
                Err(Refusal::ForeignAddress)
            }
        }
        (HostPart::Name(name), _) => {
            if name == "localhost" || policy.names.contains(name) {
                Ok(())
            } else {
                Err(Refusal::ForeignName)
            }
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The Fetch Metadata resource isolation policy: another site may navigate to a page (a link
/// to the status page), but not include one of its answers in its own.
fn read_isolation(headers: &HeaderMap, site: Option<&str>) -> Result<(), Refusal> {
    let cross = site.is_some_and(|s| {
        s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
    });
    if !cross {
        return Ok(());
    }
    let mode = single(headers, "sec-fetch-mode")?;
    let dest = single(headers, "sec-fetch-dest")?;
    let navigation = mode.is_none_or(|m| m.eq_ignore_ascii_case("navigate"))
        && !dest
            .is_some_and(|d| d.eq_ignore_ascii_case("object") || d.eq_ignore_ascii_case("embed"));
    if navigation {
        Ok(())
    } else {
        Err(Refusal::CrossSiteRead)
    }
}

/// The one value of header `name`, if present; two values, or one that is not text, refuse.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(Some)
            .map_err(|_| Refusal::CrossSite("refused: a request header is not text")),
        (Some(_), Some(_)) => Err(Refusal::CrossSite(
            "refused: a request header that must appear once appears twice",
        )),
    }
}

/// `Ok` when the `Authorization` header carries `expected`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, expected: &AdminToken) -> Result<(), Refusal> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    // The time taken says nothing about how much of a guess matched.
    let matches: bool = given.as_bytes().ct_eq(expected.expose().as_bytes()).into();
    if matches { Ok(()) } else { Err(Refusal::Token) }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
