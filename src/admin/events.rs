//! `GET /events?since=…&site=…&host=…`: the event history as a JSON array, oldest first.
//! `since` takes an RFC 3339 time or a duration back from now (`1h`).

use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Control;
use crate::events::Filter;
use crate::events::filter::parse_since;

/// The query string; a misspelt key is refused rather than ignored (it would list everything).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    since: Option<String>,
    site: Option<String>,
    host: Option<String>,
}

pub(super) async fn list(State(s): State<Control>, Query(params): Query<Params>) -> Response {
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let since = match given(params.since) {
        None => None,
        Some(text) => match parse_since(&text, SystemTime::now()) {
            Ok(t) => Some(t),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        },
    };
    let filter = Filter {
        since,
        site: given(params.site),
        host: given(params.host),
    };
    axum::Json(s.events().list(&filter)).into_response()
}
