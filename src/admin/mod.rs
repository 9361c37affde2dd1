//! The admin HTTP listener (axum): metrics, status, drain, reload.
//!
//! - `GET /metrics`: Prometheus text (the [`metrics`](crate::metrics) the server keeps).
//! - `GET /status`: JSON of every site, host and address; `GET /`: the same as a page ([`page`]).
//! - `GET /healthz`, `GET /readyz`.
//! - `GET /drains`: every drain kept, also of hosts no longer configured.
//! - `GET /events[?since=1h&site=S&host=H]`: what happened, oldest first (`events`); the
//!   status report's last 24 hours are made from it ([`history`]).
//! - `POST /hosts/{site}/{host}/drain[?for=2h]`, `.../undrain`, `POST /reload`: need the
//!   bearer token when one is set, and one must be set when the listener is not on loopback.
//!
//! Every connection is bounded ([`listener`]): no client can hold the admin port.

pub mod control;
mod events;
pub mod history;
mod listener;
pub mod page;
pub mod timeline;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::connections::Slots;

use crate::state::drains::Drain;

pub use crate::config::TOKEN_ENV;
pub use control::{Control, ControlError, Drained};

#[derive(Clone)]
struct AppState {
    control: Control,
    token: Option<String>,
}

/// Serves the admin API on `listener` until `shutdown`, with at most `slots` connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Control,
    token: Option<String>,
    slots: Arc<Slots>,
    shutdown: CancellationToken,
) {
    let metrics = control.metrics.clone();
    let app = Router::new()
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
        .with_state(AppState { control, token });
    listener::serve(listener, app, slots, metrics, shutdown).await;
}

async fn page_handler(State(s): State<AppState>) -> Response {
    match s.control.status().await {
        Some(report) => {
            let past = timeline::section(&report, &s.control.events().shared());
            Html(page::render(&report, &past)).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    match s.control.status().await {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.control.metrics.encode(),
    )
        .into_response()
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.control.is_ready() {
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

/// `None` when the request may proceed; otherwise the refusal to send.
fn refusal(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    let expected = s.token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    // Compared in constant time: the time taken says nothing about how much of a guess matched.
    let matches: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    (!matches).then(|| {
        action(
            StatusCode::UNAUTHORIZED,
            false,
            "a valid bearer token is required".into(),
        )
    })
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 7235 section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn set_drain(
    s: AppState,
    headers: HeaderMap,
    site: String,
    host: String,
    drain: Option<Drain>,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let verb = match drain {
        None => "undrained".to_string(),
        Some(Drain { until: None }) => "drained".to_string(),
        Some(Drain { until: Some(t) }) => {
            format!("drained until {}", humantime::format_rfc3339_seconds(t))
        }
    };
    match s.control.drain(&site, &host, drain).await {
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
    State(s): State<AppState>,
    headers: HeaderMap,
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
    set_drain(s, headers, site, host, Some(Drain { until })).await
}

async fn undrain(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((site, host)): Path<(String, String)>,
) -> Response {
    set_drain(s, headers, site, host, None).await
}

async fn drains(State(s): State<AppState>) -> Response {
    match s.control.drains().await {
        Some(list) => axum::Json(list).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    match s.control.reload().await {
        Ok(message) => action(StatusCode::OK, true, message),
        Err(e) => action(error_status(&e), false, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
