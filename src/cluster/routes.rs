//! The admin routes the peers call, behind the admin API's gate like every route:
//!
//! - `GET /cluster/view`: this instance's view ([`View`](super::wire::View));
//! - `GET /cluster/drains`: every drain register, in the drained-hosts file's form;
//! - `POST /cluster/drains`: a peer's registers to merge (a change made there, or all of them
//!   when this instance comes back);
//! - `POST /cluster/reload`: a reload asked for on a peer (its stamp): this instance reloads
//!   its own config file, unless it has reloaded since.
//!
//! Every one needs the shared token (`Authorization: Bearer`), reads too: they are for peers,
//! which all hold it, and a peer whose token differs learns at once that it is refused. Each
//! answer carries the proof of the request's nonce ([`proof`]). None of them is
//! forwarded: a change that arrives here was already sent to every peer by the instance it was
//! made on. An instance without `[cluster]` has none of them (404).

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::{info, warn};

use super::proof::{self, NONCE_HEADER, PROOF_HEADER};
use super::wire::{clean, parse_drains};
use crate::admin::{ActionResult, Control, Remote};
use crate::config::AdminToken;
use crate::state::hlc::Stamp;

/// The routes of `cluster`, for the admin API's router.
pub(crate) fn router(cluster: super::Cluster) -> Router<Control> {
    Router::new()
        .route("/cluster/view", get(view))
        .route("/cluster/drains", get(drains).post(merge))
        .route("/cluster/reload", post(reload))
        .layer(Extension(cluster))
}

/// The token and nonce of a peer's request, once checked.
struct Asked {
    token: AdminToken,
    nonce: String,
    cluster: super::Cluster,
}

/// Why a peer request is not served.
enum Refused {
    Token,
    Nonce,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            Self::Token => (StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
            Self::Nonce => (StatusCode::BAD_REQUEST, "a peer request needs a nonce"),
        };
        let result = ActionResult {
            ok: false,
            message: message.into(),
            saved: None,
            instances: Vec::new(),
        };
        (code, axum::Json(result)).into_response()
    }
}

/// Checks that the request carries the token and a nonce.
fn asked(
    control: &Control,
    cluster: &super::Cluster,
    headers: &HeaderMap,
    remote: &Remote,
) -> Result<Asked, Refused> {
    let policy = control.admin_policy();
    let token = match policy.token() {
        Some(token) if policy.bearer_holds(headers) => token.clone(),
        _ => {
            remote.refused("a peer request without the valid token");
            return Err(Refused::Token);
        }
    };
    let nonce = (headers.get(NONCE_HEADER))
        .and_then(|v| v.to_str().ok())
        .filter(|n| proof::valid_nonce(n));
    let Some(nonce) = nonce else {
        return Err(Refused::Nonce);
    };
    Ok(Asked {
        token,
        nonce: nonce.to_string(),
        cluster: cluster.clone(),
    })
}

/// An answer with the proof that this instance holds the token.
fn proven(asked: &Asked, status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let proof = proof::sign(&asked.token, &asked.nonce, status.as_u16(), &body);
    (
        status,
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (PROOF_HEADER.parse().expect("header name"), proof),
        ],
        body,
    )
        .into_response()
}

fn proven_result(asked: &Asked, status: StatusCode, message: String) -> Response {
    let result = ActionResult {
        ok: status.is_success(),
        message,
        saved: None,
        instances: Vec::new(),
    };
    let body = serde_json::to_vec(&result).expect("a result serializes");
    proven(asked, status, "application/json", body)
}

async fn view(
    State(control): State<Control>,
    Extension(cluster): Extension<super::Cluster>,
    Extension(remote): Extension<Remote>,
    headers: HeaderMap,
) -> Response {
    let asked = match asked(&control, &cluster, &headers, &remote) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(report) = control.status_now().await else {
        return proven_result(
            &asked,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        );
    };
    let view = asked.cluster.own_view(&report);
    let body = serde_json::to_vec(&view).expect("a view serializes");
    proven(&asked, StatusCode::OK, "application/json", body)
}

async fn drains(
    State(control): State<Control>,
    Extension(cluster): Extension<super::Cluster>,
    Extension(remote): Extension<Remote>,
    headers: HeaderMap,
) -> Response {
    let asked = match asked(&control, &cluster, &headers, &remote) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    let text = asked.cluster.drains().0.text();
    proven(
        &asked,
        StatusCode::OK,
        "text/plain; charset=utf-8",
        text.into_bytes(),
    )
}

async fn merge(
    State(control): State<Control>,
    Extension(cluster): Extension<super::Cluster>,
    Extension(remote): Extension<Remote>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = match asked(&control, &cluster, &headers, &remote) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    let drains = match parse_drains(&body) {
        Ok(d) => d,
        Err(e) => return proven_result(&asked, StatusCode::BAD_REQUEST, e),
    };
    let merged = control.merge(drains, remote.to_string()).await;
    if merged.as_ref().is_some_and(|o| o.changed > 0) {
        // This instance's view changed: the views it holds of the others may be stale too.
        asked.cluster.refresh();
    }
    match merged {
        Some(outcome) if outcome.refused.is_empty() => proven_result(
            &asked,
            StatusCode::OK,
            format!("{} changed", outcome.changed),
        ),
        Some(outcome) => proven_result(
            &asked,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} changed; not taken: {}",
                outcome.changed,
                clean(&outcome.refused.join("; "))
            ),
        ),
        None => proven_result(
            &asked,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        ),
    }
}

async fn reload(
    State(control): State<Control>,
    Extension(cluster): Extension<super::Cluster>,
    Extension(remote): Extension<Remote>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = match asked(&control, &cluster, &headers, &remote) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(),
    };
    let stamp = std::str::from_utf8(&body)
        .ok()
        .and_then(|t| Stamp::parse(t.trim()));
    let Some(stamp) = stamp else {
        let why = "a forwarded reload carries its stamp".to_string();
        return proven_result(&asked, StatusCode::BAD_REQUEST, why);
    };
    match asked.cluster.catch_up_reload(&control, &stamp).await {
        Ok(Some(Ok(message))) => {
            info!(asked_on = %stamp.origin, "reloaded: asked for on a peer");
            proven_result(&asked, StatusCode::OK, message)
        }
        Ok(Some(Err(e))) => {
            let status = crate::admin::error_status(&e);
            proven_result(&asked, status, e.to_string())
        }
        Ok(None) => {
            let why = "already reloaded since it was asked for".to_string();
            proven_result(&asked, StatusCode::OK, why)
        }
        Err(e) => {
            warn!(asked_on = %stamp.origin, error = %e, "a forwarded reload was not taken");
            proven_result(&asked, StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}
