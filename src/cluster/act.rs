//! A change made here, delivered to every peer at once: a drain or an undrain (its stamped
//! register, with the same absolute end everywhere) or a reload (its stamp; each peer reloads
//! its own config file). Each peer's result is named in the operator's reply. A peer that
//! cannot be reached now gets the change when it is back: it pulls the drains that differ, and
//! sees in this instance's view the reload it missed. Requests to `/cluster/...` are never
//! forwarded again: only the instance an operator acted on forwards. The admin API reaches
//! all this through the [`Peers`] hook the cluster implements here.

use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::http::Method;

use super::Cluster;
use super::peer::{PeerError, PeerLink, RELOAD_TIMEOUT, REQUEST_TIMEOUT};
use crate::admin::{Control, ControlError, Delivery, Outcome, Peers};
use crate::health::status::StatusReport;
use crate::loaded::Loaded;
use crate::state::drains::{Drains, Entry};
use crate::state::hlc::Stamp;

#[async_trait]
impl Peers for Cluster {
    fn me(&self) -> &str {
        Cluster::me(self)
    }

    async fn deliver_drain(&self, key: &str, entry: &Entry) -> Vec<Delivery> {
        Cluster::deliver_drain(self, key, entry).await
    }

    async fn reload(&self, control: &Control) -> (Result<String, ControlError>, Vec<Delivery>) {
        let stamp = self.reload_asked();
        tokio::join!(self.reload_here(control), self.forward_reload(&stamp))
    }

    fn reconfigure(&self, loaded: &Loaded) {
        Cluster::reconfigure(self, loaded);
    }

    fn routes(&self) -> Router<Control> {
        super::routes::router(self.clone())
    }

    fn status(&self, report: &StatusReport) -> serde_json::Value {
        serde_json::to_value(self.report(report)).expect("a cluster report serializes")
    }

    fn page(&self, report: &StatusReport) -> String {
        super::page::section(&self.report(report))
    }
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
