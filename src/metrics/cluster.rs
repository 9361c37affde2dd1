//! Cluster metrics, written by the peer task: whether each peer answers, whether its config
//! differs, and how many peers disagree about each relay. Each configured peer's series exist
//! from the start (0), so that alerts see the first failure; a peer removed from the config
//! loses its series.

use std::net::SocketAddr;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::HostLabels;

/// Labels of one peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The peer's admin address, as `cluster.peers` lists it.
    pub peer: String,
}

/// The cluster families.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// 1 while the last poll of the peer worked (reachable, holding the token).
    pub peer_up: Family<PeerLabels, Gauge>,
    /// 1 while the peer's config or zone fingerprint differs from this instance's.
    pub config_differs: Family<PeerLabels, Gauge>,
    /// Peers that have disagreed with this instance about the relay for longer than one probe
    /// interval plus two timeouts; 0 otherwise.
    pub disagreements: Family<HostLabels, Gauge>,
    /// The peers with a series, to drop those no longer configured.
    peers: Mutex<Vec<PeerLabels>>,
    /// The relays with a series, to drop those no longer reported.
    relays: Mutex<Vec<HostLabels>>,
}

impl ClusterMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "peer_up",
            "1 while the last poll of a cluster peer worked: reachable, and holding the shared token",
            self.peer_up.clone(),
        );
        registry.register(
            "peer_config_differs",
            "1 while a cluster peer's config or zone file differs from this instance's (fingerprints)",
            self.config_differs.clone(),
        );
        registry.register(
            "peer_disagreements",
            "Cluster peers that have seen a relay differently from this instance (up, down, drained) for longer than one probe interval plus two probe timeouts",
            self.disagreements.clone(),
        );
    }

    /// Keeps the series of `peers` (at 0 for a new one) and drops the others'.
    pub fn keep_peers(&self, peers: &[SocketAddr]) {
        let keep: Vec<PeerLabels> = (peers.iter())
            .map(|p| PeerLabels {
                peer: p.to_string(),
            })
            .collect();
        let mut known = self.peers.lock().expect("peers lock");
        for old in known.iter().filter(|l| !keep.contains(l)) {
            self.peer_up.remove(old);
            self.config_differs.remove(old);
        }
        for labels in &keep {
            let _ = self.peer_up.get_or_create(labels);
            let _ = self.config_differs.get_or_create(labels);
        }
        *known = keep;
    }

    /// Records a poll of `peer`.
    pub fn set_peer(&self, peer: SocketAddr, up: bool, differs: bool) {
        let labels = PeerLabels {
            peer: peer.to_string(),
        };
        self.peer_up.get_or_create(&labels).set(i64::from(up));
        self.config_differs
            .get_or_create(&labels)
            .set(i64::from(differs));
    }

    /// Makes a series (0) for each relay of `relays` that has none, and drops those of relays
    /// not listed: every configured relay's series exists from the start.
    pub fn keep_relays(&self, relays: &[(String, String)]) {
        let keep: Vec<HostLabels> = (relays.iter())
            .map(|(site, host)| HostLabels {
                site: site.clone(),
                host: host.clone(),
            })
            .collect();
        let mut known = self.relays.lock().expect("relays lock");
        for old in known.iter().filter(|l| !keep.contains(l)) {
            self.disagreements.remove(old);
        }
        for labels in &keep {
            let _ = self.disagreements.get_or_create(labels);
        }
        *known = keep;
    }

    /// Sets every relay's count of disagreeing peers, `(site, host, count)`; relays no longer
    /// listed lose their series.
    pub fn set_disagreements(&self, counts: &[(String, String, usize)]) {
        let now: Vec<HostLabels> = (counts.iter())
            .map(|(site, host, _)| HostLabels {
                site: site.clone(),
                host: host.clone(),
            })
            .collect();
        let mut relays = self.relays.lock().expect("relays lock");
        for old in relays.iter().filter(|l| !now.contains(l)) {
            self.disagreements.remove(old);
        }
        for (labels, (_, _, count)) in now.iter().zip(counts) {
            (self.disagreements.get_or_create(labels))
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        *relays = now;
    }
}
