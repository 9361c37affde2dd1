//! `[cluster]`: the other instances that serve the same zone, by their admin listeners. Every
//! instance may read the same file: each leaves its own address out of `peers`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::validate::{Validator, root};
use super::{Config, ConfigError};

/// `[cluster]`: instances that act as one (drains, reloads) and compare what they see.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The admin listeners (`server.admin`) of every instance, this one's included or not.
    pub peers: Vec<SocketAddr>,
    /// A peer unreachable this long is an event and a WARN line (its metric says so at once).
    #[serde(default = "default_unreachable_after", with = "humantime_serde")]
    pub unreachable_after: Duration,
}

fn default_unreachable_after() -> Duration {
    Duration::from_secs(60)
}

impl Validator<'_> {
    /// `[cluster]`: peers that can be dialled, once each, and the token they share.
    pub(super) fn cluster(&self, config: &Config) -> Result<(), ConfigError> {
        let Some(cluster) = &config.cluster else {
            return Ok(());
        };
        let at = || root().key("cluster");
        self.check(
            config.has_admin_token(),
            at(),
            format!(
                "instances act on each other with the admin token they share: set server.admin_token_file (or admin_token, or {}) to the same token on every instance",
                super::TOKEN_ENV
            ),
        )?;
        self.check(
            !cluster.peers.is_empty(),
            at().key("peers"),
            "list the admin listeners (server.admin) of the instances, such as [\"10.0.0.53:8053\", \"10.0.1.53:8053\"]",
        )?;
        self.check(
            cluster.unreachable_after >= Duration::from_secs(1),
            at().key("unreachable_after"),
            "must be at least 1s",
        )?;
        for (i, peer) in cluster.peers.iter().enumerate() {
            let here = at().key("peers").index(i);
            self.check(
                !peer.ip().is_unspecified() && !peer.ip().is_multicast() && peer.port() != 0,
                here.clone(),
                format!("{peer} is not an address an instance can be reached at: give its server.admin, such as \"10.0.1.53:8053\""),
            )?;
            self.check(
                !cluster.peers[..i].contains(peer),
                here,
                format!("{peer} is listed twice"),
            )?;
        }
        Ok(())
    }
}

/// What `check-config` says about `[cluster]` without refusing the config.
pub(crate) fn warnings(config: &Config) -> Vec<String> {
    let (Some(cluster), Some(admin)) = (&config.cluster, config.server.admin) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let remote: Vec<String> = (cluster.peers.iter())
        .filter(|p| !p.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    if admin.ip().is_loopback() && !remote.is_empty() {
        out.push(format!(
            "server.admin {admin} is on loopback: the instances at {} cannot reach this one (listen on an address they can reach)",
            remote.join(", ")
        ));
    }
    if !remote.is_empty() {
        out.push(
            "cluster peers talk plain HTTP: the admin token crosses the network in the clear unless the path is protected (WireGuard, an SSH tunnel, a TLS proxy)"
                .into(),
        );
    }
    out
}
