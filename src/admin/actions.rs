//! The operator's actions over HTTP: drain, undrain, reload, and the drains list. With
//! `[cluster]`, a drain, an undrain or a reload made here is delivered to every peer at once
//! ([`Peers`](super::peers::Peers)), and the reply names each instance and its result.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::peers::{Delivery, Outcome};
use super::{Control, ControlError};
use crate::state::drains::Drain;

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
    /// With `[cluster]`: each instance (this one first) and how the change went there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Delivery>,
}

pub(super) fn action(code: StatusCode, ok: bool, message: String) -> Response {
    let result = ActionResult {
        ok,
        message,
        saved: None,
        instances: Vec::new(),
    };
    (code, axum::Json(result)).into_response()
}

/// The HTTP status of a failed operator action.
pub(crate) fn error_status(e: &ControlError) -> StatusCode {
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
            let instances = match s.peers() {
                Some(peers) => {
                    let (key, entry) = &done.entry;
                    let delivered = peers.deliver_drain(key, entry).await;
                    with_instances(peers.me(), Outcome::Applied, delivered)
                }
                None => Vec::new(),
            };
            let result = ActionResult {
                ok: true,
                message,
                saved: Some(done.not_saved.is_none()),
                instances,
            };
            (StatusCode::OK, axum::Json(result)).into_response()
        }
        Err(e) => action(error_status(&e), false, e.to_string()),
    }
}

/// `?for=2h`: a drain that ends by itself.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DrainParams {
    #[serde(rename = "for")]
    period: Option<String>,
}

/// The longest maintenance window a timed drain may set.
const LONGEST_DRAIN: Duration = Duration::from_secs(366 * 24 * 3600);

pub(super) async fn drain(
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

pub(super) async fn undrain(
    State(s): State<Control>,
    Path((site, host)): Path<(String, String)>,
) -> Response {
    set_drain(s, site, host, None).await
}

pub(super) async fn drains(State(s): State<Control>) -> Response {
    match s.drains().await {
        Some(list) => axum::Json(list).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

pub(super) async fn reload(State(s): State<Control>) -> Response {
    let Some(peers) = s.peers() else {
        return match s.reload().await {
            Ok(message) => action(StatusCode::OK, true, message),
            Err(e) => action(error_status(&e), false, e.to_string()),
        };
    };
    let (here, delivered) = peers.reload(&s).await;
    let (code, ok, message) = match here {
        Ok(message) => (StatusCode::OK, true, message),
        Err(e) => (error_status(&e), false, e.to_string()),
    };
    let here = if ok {
        Outcome::Applied
    } else {
        Outcome::Failed
    };
    let instances = with_instances(peers.me(), here, delivered);
    let result = ActionResult {
        ok,
        message,
        saved: None,
        instances,
    };
    (code, axum::Json(result)).into_response()
}

/// Every instance's result: this one (`me`, whose own result the reply's message gives)
/// first, then the peers'.
fn with_instances(me: &str, here: Outcome, peers: Vec<Delivery>) -> Vec<Delivery> {
    let mut all = vec![Delivery {
        instance: me.to_string(),
        result: here,
        message: "this instance".into(),
    }];
    all.extend(peers);
    all
}
