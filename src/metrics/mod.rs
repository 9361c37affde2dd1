//! Prometheus metrics (prometheus-client).
//!
//! Every family is named `smarthostd_*` except the standard process metrics, which keep the
//! names stock dashboards and alerts look for.
//!
//! - Probe and health metrics: families updated by the health task (here).
//! - [`dns`]: DNS counters on the hot path, summed at scrape time.
//! - [`collectors`]: warm-standby counts, runtime tasks and readiness, read at scrape time.
//! - [`process`]: `process_*` figures from `/proc/self`, read at scrape time.
//! - [`reputation`]: blocklist listings, demotions and lookups, updated by the health task.
//! - `cluster`: peers up, their configs, disagreements about relays; updated by the peer task.

mod cluster;
mod collectors;
mod dns;
mod process;
mod reputation;

use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::answer::Snapshot;
pub use cluster::{ClusterMetrics, PeerLabels};
use collectors::{ReadyCollector, RuntimeCollector, WarmCollector};
use dns::DnsCollector;
pub use dns::{Answered, CookieSeen, DnsStats};
use process::ProcessCollector;
pub use reputation::{DemotedLabels, EgressLabels, LookupLabels, ReputationMetrics};

/// Labels of one host.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
}

/// Labels of one probed address and its result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
    /// The probed address, as text.
    pub address: String,
    /// `up` (the probe passed) or `down`.
    pub result: &'static str,
}

/// Labels of one address.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AddressLabels {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
    /// The probed address, as text.
    pub address: String,
}

/// Labels of a state change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
    /// The probed address, as text.
    pub address: String,
    /// The state changed to: `up` or `down`.
    pub to: &'static str,
}

/// Labels of a site's answer mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    /// The site's name.
    pub site: String,
}

/// Labels of a TCP listener.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type HistogramCtor = fn() -> Histogram;

/// One address's probe series, looked up once when the address is added, so that recording a
/// probe costs a few atomic operations rather than label formatting and map lookups: with
/// thousands of relays, probes are the busiest thing the health task does.
#[derive(Clone, Debug)]
pub struct AddressMetrics {
    up_results: Counter,
    down_results: Counter,
    duration: Histogram,
    up: Gauge,
}

impl AddressMetrics {
    /// Records one probe and the address's state after it.
    pub fn probed(&self, ok: bool, elapsed: std::time::Duration, up: bool) {
        if ok {
            self.up_results.inc();
        } else {
            self.down_results.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
        self.set_up(up);
    }

    /// Sets the address's up gauge.
    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }
}

/// Every metric smarthostd exports.
pub struct Metrics {
    registry: Registry,
    dns: Arc<DnsCollector>,
    warm: Arc<WarmCollector>,
    runtime: Arc<RuntimeCollector>,
    ready: Arc<ReadyCollector>,
    /// `smarthostd_probe_results_total`: SMTP probes of each address, by result.
    pub probe_results: Family<ProbeLabels, Counter>,
    /// `smarthostd_probe_duration_seconds`: how long the probes of a host took, passed or failed.
    pub probe_duration: Family<HostLabels, Histogram, HistogramCtor>,
    /// `smarthostd_host_up`: 1 while a host may be named in answers.
    pub host_up: Family<HostLabels, Gauge>,
    /// `smarthostd_host_drained`: 1 while an operator has a host drained.
    pub host_drained: Family<HostLabels, Gauge>,
    /// `smarthostd_address_up`: 1 while an address is up; 0 while it is down or not yet probed.
    pub address_up: Family<AddressLabels, Gauge>,
    /// `smarthostd_transitions_total`: address state changes, by the state changed to.
    pub transitions: Family<TransitionLabels, Counter>,
    /// `smarthostd_tlsa_mismatch`: per address of a pinned relay, 1 while the last certificate
    /// it presented matched none of its TLSA records (or was shown without its key).
    pub tlsa_mismatch: Family<AddressLabels, Gauge>,
    /// 0 normal, 1 remote hosts only, 2 failsafe.
    pub site_mode: Family<SiteLabels, Gauge>,
    /// `smarthostd_snapshot_generation`: the generation of the answers served.
    pub generation: Gauge,
    /// Events not appended to `state_dir/events.jsonl`; they stay in memory.
    pub events_write_failures: Counter,
    /// The blocklist families: listings, demotions, lookups.
    pub reputation: ReputationMetrics,
    /// The cluster families: peers up, configs that differ, disagreements.
    pub cluster: ClusterMetrics,
    reloads: Family<ResultLabels, Counter>,
    evictions: Family<ListenerLabels, Counter>,
    accept_errors: Family<ListenerLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn probe_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered; both reload results start at zero, so that the first failure is
    /// an increase.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector::default()));
        let registry = root.sub_registry_with_prefix("smarthostd");
        let dns = Arc::new(DnsCollector::default());
        registry.register_collector(Box::new(dns.clone()));
        let warm = Arc::new(WarmCollector::default());
        registry.register_collector(Box::new(warm.clone()));
        let runtime = Arc::new(RuntimeCollector::default());
        registry.register_collector(Box::new(runtime.clone()));
        let ready = Arc::new(ReadyCollector::default());
        registry.register_collector(Box::new(ready.clone()));
        let m = Self {
            dns,
            warm,
            runtime,
            ready,
            probe_results: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram as HistogramCtor),
            host_up: Family::default(),
            host_drained: Family::default(),
            address_up: Family::default(),
            transitions: Family::default(),
            tlsa_mismatch: Family::default(),
            site_mode: Family::default(),
            generation: Gauge::default(),
            events_write_failures: Counter::default(),
            reputation: ReputationMetrics::default(),
            cluster: ClusterMetrics::default(),
            reloads: Family::default(),
            evictions: Family::default(),
            accept_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "probe_results",
            "SMTP probes by result",
            m.probe_results.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "Time an SMTP probe took, good or bad",
            m.probe_duration.clone(),
        );
        registry.register(
            "host_up",
            "1 while a host may be named in answers",
            m.host_up.clone(),
        );
        registry.register(
            "host_drained",
            "1 while an operator has drained a host",
            m.host_drained.clone(),
        );
        registry.register(
            "address_up",
            "1 while an address is up (0 until its first probe passes)",
            m.address_up.clone(),
        );
        registry.register(
            "transitions",
            "Address state changes",
            m.transitions.clone(),
        );
        registry.register(
            "tlsa_mismatch",
            "1 while the certificate a pinned relay's address presented last matches none of its TLSA records, or was presented without its private key: a DANE sender refuses it",
            m.tlsa_mismatch.clone(),
        );
        registry.register(
            "site_answer_mode",
            "A site's MX answer: 0 local hosts lead, 1 remote hosts only, 2 failsafe (everything configured)",
            m.site_mode.clone(),
        );
        registry.register(
            "snapshot_generation",
            "Generation of the published answers",
            m.generation.clone(),
        );
        registry.register(
            "events_write_failures",
            "Events that could not be appended to state_dir/events.jsonl (full disk, a folder in its place, a writer behind); they stay in memory",
            m.events_write_failures.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            m.reloads.clone(),
        );
        registry.register(
            "connections_evicted",
            "TCP connections closed, when every slot was taken, to admit a new client",
            m.evictions.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts on a TCP listener (out of descriptors), each followed by a pause",
            m.accept_errors.clone(),
        );
        m.reputation.register(registry);
        m.cluster.register(registry);
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        // Both results exist from the start, so that an alert on the failed count's increase
        // sees the first failure too.
        for result in ["ok", "failed"] {
            let _ = m.reloads.get_or_create(&ResultLabels { result });
        }
        Self {
            registry: root,
            ..m
        }
    }

    /// A new set of DNS counters; `single_writer` when one thread alone will write them.
    pub fn dns_stats(&self, single_writer: bool) -> Arc<DnsStats> {
        let stats = Arc::new(DnsStats::new(single_writer));
        self.dns
            .stats
            .lock()
            .expect("stats lock")
            .push(stats.clone());
        stats
    }

    /// Lets the warm-standby counters be read from the published snapshots.
    pub fn attach(&self, snapshot: Arc<ArcSwap<Snapshot>>) {
        let _ = self.warm.snapshot.set(snapshot);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.count_tasks_of(rt);
        }
    }

    /// Makes `ready` follow the first probe round, as `/readyz` does.
    pub fn watch_ready(&self, ready: tokio::sync::watch::Receiver<bool>) {
        let _ = self.ready.ready.set(ready);
    }

    /// Adds a runtime's live tasks to `runtime_alive_tasks`.
    pub fn count_tasks_of(&self, runtime: tokio::runtime::Handle) {
        self.runtime
            .runtimes
            .lock()
            .expect("runtimes lock")
            .push(runtime);
    }

    /// The probe series of one address.
    pub fn address(&self, site: &str, host: &str, address: std::net::IpAddr) -> AddressMetrics {
        let (site, host, address) = (site.to_string(), host.to_string(), address.to_string());
        let results = |result| {
            self.probe_results
                .get_or_create(&ProbeLabels {
                    site: site.clone(),
                    host: host.clone(),
                    address: address.clone(),
                    result,
                })
                .clone()
        };
        AddressMetrics {
            up_results: results("up"),
            down_results: results("down"),
            duration: self
                .probe_duration
                .get_or_create(&HostLabels {
                    site: site.clone(),
                    host: host.clone(),
                })
                .clone(),
            up: self
                .address_up
                .get_or_create(&AddressLabels {
                    site,
                    host,
                    address,
                })
                .clone(),
        }
    }

    /// Counts a connection closed on `listener` to admit another.
    pub fn evicted(&self, listener: &'static str) {
        self.evictions
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    /// Counts a failed accept on `listener`.
    pub fn accept_error(&self, listener: &'static str) {
        self.accept_errors
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    /// Counts a configuration reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding to a String");
        out
    }
}
