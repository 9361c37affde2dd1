//! The admin HTTP listener (axum): metrics, status, drain, reload.
//!
//! - `GET /metrics`: Prometheus text ([`metrics`]).
//! - `GET /status`: JSON of every site, host and address; `GET /`: the same as a page ([`page`]).
//! - `GET /healthz`, `GET /readyz`.
//! - `POST /hosts/{site}/{host}/drain`, `.../undrain`, `POST /reload`: need the bearer token
//!   when one is set, and one must be set when the listener is not on loopback.

pub mod metrics;
pub mod page;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::Config;
use crate::server::Control;

/// The environment variable that may hold the admin token.
pub const TOKEN_ENV: &str = "SMARTHOSTD_ADMIN_TOKEN";

/// The admin token: `server.admin_token`, else the environment.
pub fn token(config: &Config) -> Option<String> {
    config
        .server
        .admin_token
        .clone()
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|t| !t.is_empty())
}

/// Refuses an admin listener reachable from other machines without a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(format!(
            "server.admin = {addr} is not on loopback: set server.admin_token or {TOKEN_ENV}, so that drain and reload need it"
        ))
    }
}

#[derive(Clone)]
struct AppState {
    control: Control,
    token: Option<String>,
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Control,
    token: Option<String>,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route("/", get(page_handler))
        .route("/status", get(status))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/hosts/{site}/{host}/drain", post(drain))
        .route("/hosts/{site}/{host}/undrain", post(undrain))
        .route("/reload", post(reload))
        .with_state(AppState { control, token });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        warn!(%error, "admin listener stopped");
    }
}

async fn page_handler(State(s): State<AppState>) -> Response {
    match s.control.status().await {
        Some(report) => Html(page::render(&report)).into_response(),
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
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ActionResult {
    pub ok: bool,
    pub message: String,
}

fn action(code: StatusCode, ok: bool, message: String) -> Response {
    (code, axum::Json(ActionResult { ok, message })).into_response()
}

/// `None` when the request may proceed; otherwise the refusal to send.
fn refusal(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    let expected = s.token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    (!constant_time_eq(given.as_bytes(), expected.as_bytes())).then(|| {
        action(
            StatusCode::UNAUTHORIZED,
            false,
            "a valid bearer token is required".into(),
        )
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn set_drain(
    s: AppState,
    headers: HeaderMap,
    site: String,
    host: String,
    drained: bool,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let verb = if drained { "drained" } else { "undrained" };
    match s.control.drain(&site, &host, drained).await {
        Ok(None) => action(StatusCode::OK, true, format!("{site}/{host} {verb}")),
        Ok(Some(warning)) => action(
            StatusCode::OK,
            true,
            format!("{site}/{host} {verb}; warning: {warning}"),
        ),
        Err(e) => action(StatusCode::NOT_FOUND, false, e),
    }
}

async fn drain(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((site, host)): Path<(String, String)>,
) -> Response {
    set_drain(s, headers, site, host, true).await
}

async fn undrain(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((site, host)): Path<(String, String)>,
) -> Response {
    set_drain(s, headers, site, host, false).await
}

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    match s.control.reload().await {
        Ok(message) => action(StatusCode::OK, true, message),
        Err(e) => action(StatusCode::UNPROCESSABLE_ENTITY, false, e.to_string()),
    }
}
