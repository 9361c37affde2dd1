//! A change made here, delivered to every peer at once: a drain or an undrain (its stamped
//! register, with the same absolute end everywhere) or a reload (its stamp; each peer reloads
//! its own config file). Each peer's result is named in the operator's reply. A peer that
//! cannot be reached now gets the change when it is back: it pulls the drains that differ, and
//! sees in this instance's view the reload it missed. Requests to `/cluster/...` are never
//! forwarded again: only the instance an operator acted on forwards.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::Method;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::hlc::Stamp;
use super::peer::{PeerError, PeerLink, RELOAD_TIMEOUT, REQUEST_TIMEOUT};
use crate::state::drains::{Drains, Entry};

/// How a change went on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done: for a drain, in its answers when it replied.
    Applied,
    /// Not reachable now: it gets the change when it is back.
    Unreachable,
    /// It refused this instance's token (or could not prove it holds it): it will not get the
    /// change until the tokens agree.
    Refused,
    /// It answered with an error: a reload whose config does not load there, say.
    Failed,
}

/// One instance's result, as the reply names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The instance: this one's name, or a peer's address as `cluster.peers` lists it.
    pub instance: String,
    /// How the change went there.
    pub result: Outcome,
    /// What happened there, or why not, for a person to read.
    pub message: String,
}

impl Cluster {
    /// Delivers the register of `key` to every peer.
    pub async fn deliver_drain(&self, key: &str, entry: &Entry) -> Vec<Delivery> {
        let mut one = Drains::default();
        one.merge(key, entry.clone(), std::time::SystemTime::now());
        let body = Bytes::from(one.text());
        let mut done = self
            .to_every_peer("/cluster/drains", body, REQUEST_TIMEOUT, "when it is back")
            .await;
        for d in done.iter_mut().filter(|d| d.result == Outcome::Applied) {
            // Its answers have changed: the count of registers it took says no more.
            d.message = "applied".into();
        }
        self.refresh();
        done
    }

    /// Forwards a reload asked for here (`stamp`) to every peer.
    pub async fn forward_reload(&self, stamp: &Stamp) -> Vec<Delivery> {
        let body = Bytes::from(stamp.to_string());
        self.to_every_peer(
            "/cluster/reload",
            body,
            RELOAD_TIMEOUT,
            "it reloads when it is back",
        )
        .await
    }

    /// Sends every drain to `link` (a peer that has just come back).
    pub(super) async fn push_drains(&self, link: &PeerLink) -> Result<(), PeerError> {
        let settings = self.settings();
        let Some(token) = &settings.token else {
            return Ok(());
        };
        let body = Bytes::from(self.drains().0.text());
        let path = "/cluster/drains";
        link.request(token, Method::POST, path, Some(body), REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn to_every_peer(
        &self,
        path: &'static str,
        body: Bytes,
        limit: Duration,
        later: &'static str,
    ) -> Vec<Delivery> {
        let settings = self.settings();
        let Some(token) = settings.token.clone() else {
            return Vec::new();
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, link) in settings.peers.iter().enumerate() {
            let (link, token, body) = (link.clone(), token.clone(), body.clone());
            tasks.spawn(async move {
                let answer = link
                    .request(&token, Method::POST, path, Some(body), limit)
                    .await;
                (i, link.addr, answer)
            });
        }
        let mut deliveries = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let Ok((i, addr, answer)) = done else {
                continue;
            };
            let (result, message) = match answer {
                Ok(bytes) => (Outcome::Applied, applied_message(&bytes)),
                Err(PeerError::Unreachable(why)) => (
                    Outcome::Unreachable,
                    format!("unreachable ({why}): {}", with_later(later)),
                ),
                Err(PeerError::Refused(why)) => (Outcome::Refused, format!("refused: {why}")),
                Err(PeerError::Failed(why)) => (Outcome::Failed, format!("failed: {why}")),
            };
            deliveries.push((
                i,
                Delivery {
                    instance: addr.to_string(),
                    result,
                    message,
                },
            ));
        }
        deliveries.sort_by_key(|(i, _)| *i);
        deliveries.into_iter().map(|(_, d)| d).collect()
    }
}

fn with_later(later: &str) -> String {
    if later.starts_with("it ") {
        later.to_string()
    } else {
        format!("it gets this {later}")
    }
}

/// The peer's own words on what it did (its [`ActionResult`](crate::admin::ActionResult)),
/// cleaned; `applied` when it says nothing more.
fn applied_message(bytes: &[u8]) -> String {
    match serde_json::from_slice::<crate::admin::ActionResult>(bytes) {
        Ok(result) if !result.message.is_empty() => {
            format!("applied: {}", super::wire::clean(&result.message))
        }
        _ => "applied".into(),
    }
}
