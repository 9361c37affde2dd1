//! The admin HTTP API (axum): metrics, status, drain, reload, on a TCP listener
//! (`server.admin`) and on the control socket (`server.control_socket`, [`socket`]).
//!
//! - `GET /metrics`: Prometheus text (the [`metrics`](crate::metrics) the server keeps).
//! - `GET /status`: JSON of every site, host and address; `GET /`: the same as a page ([`page`]).
//! - `GET /healthz`, `GET /readyz`.
//! - `GET /drains`: every drain kept, also of hosts no longer configured.
//! - `GET /events[?since=1h&site=S&host=H]`: what happened, oldest first (`events`); the
//!   status report's last 24 hours are made from it (`last_24h`).
//! - `POST /hosts/{site}/{host}/drain[?for=2h]`, `.../undrain`, `POST /reload`: change state.
//! - With `[cluster]`: `GET /status?cluster=1`, and the routes the peers call, from the
//!   [`Peers`] hook the cluster gives [`Control`]; a drain or a reload made here
//!   reaches them too.
//!
//! One gate ([`guard`]) stands before every route: a `Host` that names the listener (DNS
//! rebinding), Fetch Metadata and `Origin` (cross-site requests), and for every state change
//! something a web page cannot send — the bearer token over TCP when one is set, else the
//! header `X-Smarthostd-Request`. On the control socket, file permissions decide who may act.
//! Every connection is bounded ([`listener`]): no client can hold the admin port.

mod actions;
pub(crate) mod control;
mod events;
mod guard;
mod host;
mod last_24h;
mod listener;
pub(crate) mod page;
pub(crate) mod peers;
mod socket;
pub(crate) mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::connections::Slots;
use actions::{drain, drains, reload, undrain};

pub use crate::config::TOKEN_ENV;
pub use actions::ActionResult;
pub(crate) use actions::error_status;
pub use control::{Control, ControlError, Drained};
pub use guard::{AdminPolicy, REQUEST_HEADER};
pub use listener::Remote;
pub use peers::{Delivery, Outcome, Peers};
pub use socket::{ControlSocket, SOCKET_MODE};

/// Serves the admin API on `listener` until `shutdown`, with at most `slots` connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Control,
    slots: Arc<Slots>,
    shutdown: CancellationToken,
) {
    let peer = match listener.local_addr() {
        Ok(addr) => guard::Peer::Tcp(addr),
        Err(error) => {
            tracing::error!(%error, "the admin listener has no address; not serving it");
            return;
        }
    };
    let metrics = control.metrics.clone();
    let app = app(control);
    listener::serve(listener, "admin", peer, app, slots, metrics, shutdown).await;
}

/// Serves the admin API on the control socket until `shutdown`, then removes the socket file.
pub async fn serve_control(
    socket: ControlSocket,
    control: Control,
    slots: Arc<Slots>,
    shutdown: CancellationToken,
) {
    let (listener, path, identity) = socket.into_parts();
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, socket = %path.display(), "cannot serve the control socket");
            return;
        }
    };
    let metrics = control.metrics.clone();
    let app = app(control);
    let peer = guard::Peer::Socket;
    listener::serve(listener, "control", peer, app, slots, metrics, shutdown).await;
    ControlSocket::remove(&path, identity);
}

/// Every route, behind the one gate ([`guard`]) that checks Host, Fetch Metadata, Origin and
/// the token before any of them runs.
fn app(control: Control) -> Router {
    let routes = Router::new()
        .route("/", get(page_handler))
        .route("/status", get(status))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/hosts/{site}/{host}/drain", post(drain))
        .route("/hosts/{site}/{host}/undrain", post(undrain))
        .route("/drains", get(drains))
        .route("/events", get(events::list))
        .route("/reload", post(reload));
    let routes = match control.peers() {
        Some(peers) => routes.merge(peers.routes()),
        None => routes,
    }
    .with_state(control.clone());
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(control, guard::gate))
}

async fn page_handler(State(s): State<Control>) -> Response {
    match s.status().await {
        Some(report) => {
            let mut below = match s.peers() {
                Some(peers) => peers.page(&report),
                None => String::new(),
            };
            below.push_str(&timeline::section(&report, &s.events().shared()));
            Html(page::render(&report, &below)).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

/// `?cluster=1`: every instance side by side too.
#[derive(Debug, Default, Deserialize)]
struct StatusParams {
    #[serde(default)]
    cluster: Option<String>,
}

async fn status(State(s): State<Control>, Query(params): Query<StatusParams>) -> Response {
    let Some(report) = s.status().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    let wanted = params
        .cluster
        .as_deref()
        .is_some_and(|v| v != "0" && v != "false");
    let Some(peers) = s.peers().filter(|_| wanted) else {
        return axum::Json(report).into_response();
    };
    let mut json = serde_json::to_value(&report).expect("a report serializes");
    json["cluster"] = peers.status(&report);
    axum::Json(json).into_response()
}

async fn metrics_handler(State(s): State<Control>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn ready(State(s): State<Control>) -> Response {
    if s.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first probe round in progress\n",
        )
            .into_response()
    }
}
