//! The admin HTTP API (axum): metrics, status, drain, reload, on a TCP listener
//! (`server.admin`) and on the control socket (`server.control_socket`, [`socket`]).
//!
//! - `GET /metrics`: Prometheus text (the [`metrics`](crate::metrics) the server keeps).
//! - `GET /status`: JSON of every site, host and address; `GET /`: the same as a page ([`page`]).
//! - `GET /healthz`, `GET /readyz`.
//! - `GET /drains`: every drain kept, also of hosts no longer configured.
//! - `GET /events[?since=1h&site=S&host=H]`: what happened, oldest first (`events`); the
//!   status report's last 24 hours are made from it ([`history`]).
//! - `POST /hosts/{site}/{host}/drain[?for=2h]`, `.../undrain`, `POST /reload`: change state.
//!
//! One gate ([`guard`]) stands before every route: a `Host` that names the listener (DNS
//! rebinding), Fetch Metadata and `Origin` (cross-site requests), and for every state change
//! something a web page cannot send — the bearer token over TCP when one is set, else the
//! header `X-Smarthostd-Request`. On the control socket, file permissions decide who may act.
//! Every connection is bounded ([`listener`]): no client can hold the admin port.

pub mod control;
mod events;
mod guard;
pub mod history;
mod host;
mod listener;
pub mod page;
mod socket;
pub mod timeline;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::connections::Slots;

use crate::state::drains::Drain;

pub use crate::config::TOKEN_ENV;
pub use control::{Control, ControlError, Drained};
pub use guard::{AdminPolicy, REQUEST_HEADER};
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
        .route("/reload", post(reload))
        .with_state(control.clone());
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(control, guard::gate))
}

async fn page_handler(State(s): State<Control>) -> Response {
    match s.status().await {
        Some(report) => {
            let past = timeline::section(&report, &s.events().shared());
            Html(page::render(&report, &past)).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn status(State(s): State<Control>) -> Response {
    match s.status().await {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
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

/// The JSON answer of a mutating endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActionResult {
    /// Whether the action happened; `false` comes with a 4xx or 5xx status.
    pub ok: bool,
    /// What happened, or why not, for a person to read: `oxford/mail1 drained`, what a reload
    /// changed, an error.
    pub message: String,
    /// For a drain: whether the state file took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
}

fn action(code: StatusCode, ok: bool, message: String) -> Response {
    let result = ActionResult {
        ok,
        message,
        saved: None,
    };
    (code, axum::Json(result)).into_response()
}

/// The HTTP status of a failed operator action.
fn error_status(e: &ControlError) -> StatusCode {
    match e {
        ControlError::UnknownHost(_) => StatusCode::NOT_FOUND,
        ControlError::Config(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ControlError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The longest site or host name taken from a request path: longer is no configured name.
const MAX_PATH_NAME: usize = 255;

async fn set_drain(s: Control, site: String, host: String, drain: Option<Drain>) -> Response {
    // The path is the client's text: made safe here, where it enters, before any log or reply
    // can carry it.
    let site = crate::network_text::clean(&site, MAX_PATH_NAME);
    let host = crate::network_text::clean(&host, MAX_PATH_NAME);
    let verb = match drain {
        None => "undrained".to_string(),
        Some(Drain { until: None }) => "drained".to_string(),
        Some(Drain { until: Some(t) }) => {
            format!("drained until {}", humantime::format_rfc3339_seconds(t))
        }
    };
    match s.drain(&site, &host, drain).await {
        Ok(done) => {
            let mut message = format!("{site}/{host} {verb}");
            if let Some(warning) = &done.warning {
                message.push_str(&format!("; warning: {warning}"));
            }
            if let Some(error) = &done.not_saved {
                message.push_str(&format!(
                    "; NOT SAVED ({error}): it holds until smarthostd restarts"
                ));
            }
            let result = ActionResult {
                ok: true,
                message,
                saved: Some(done.not_saved.is_none()),
            };
            (StatusCode::OK, axum::Json(result)).into_response()
        }
        Err(e) => action(error_status(&e), false, e.to_string()),
    }
}

/// `?for=2h`: a drain that ends by itself.
#[derive(Debug, Default, Deserialize)]
struct DrainParams {
    #[serde(rename = "for")]
    period: Option<String>,
}

/// The longest maintenance window a timed drain may set.
const LONGEST_DRAIN: Duration = Duration::from_secs(366 * 24 * 3600);

async fn drain(
    State(s): State<Control>,
    Path((site, host)): Path<(String, String)>,
    Query(params): Query<DrainParams>,
) -> Response {
    let until = match params.period.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) if !d.is_zero() && d <= LONGEST_DRAIN => Some(SystemTime::now() + d),
        Some(_) => {
            return action(
                StatusCode::BAD_REQUEST,
                false,
                "for= takes a duration such as 30m or 2h, at most 366 days".into(),
            );
        }
    };
    set_drain(s, site, host, Some(Drain { until })).await
}

async fn undrain(State(s): State<Control>, Path((site, host)): Path<(String, String)>) -> Response {
    set_drain(s, site, host, None).await
}

async fn drains(State(s): State<Control>) -> Response {
    match s.drains().await {
        Some(list) => axum::Json(list).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn reload(State(s): State<Control>) -> Response {
    match s.reload().await {
        Ok(message) => action(StatusCode::OK, true, message),
        Err(e) => action(error_status(&e), false, e.to_string()),
    }
}
