//! Prometheus metrics (prometheus-client).
//!
//! Probe and health metrics are families updated by the health task. DNS counters are on the
//! hot path, so each socket task owns a [`DnsStats`] of plain atomics that only it writes, and
//! a collector sums them at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::answer::Snapshot;
use crate::dns::respond::Outcome;

/// Query types counted by name; the rest count as "other".
const QTYPES: [(u16, &str); 7] = [
    (1, "A"),
    (28, "AAAA"),
    (15, "MX"),
    (2, "NS"),
    (6, "SOA"),
    (255, "ANY"),
    (0, "other"),
];
/// RCODEs counted by name; the rest count as "other".
const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];
/// Upper bounds of the answer latency buckets, in microseconds.
const LATENCY_BUCKETS_US: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000];

/// DNS counters of one socket task: written by it alone, summed at scrape.
#[derive(Debug, Default)]
pub struct DnsStats {
    queries: [[AtomicU64; RCODES.len()]; QTYPES.len()],
    latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_ns: AtomicU64,
    truncated: AtomicU64,
    /// Responses withheld by rate limiting: dropped, and sent truncated ("slipped").
    rate_limited: [AtomicU64; 2],
    udp: AtomicU64,
    tcp: AtomicU64,
    /// Only one thread writes these counters, so an increment needs no locked instruction.
    single_writer: bool,
}

impl DnsStats {
    fn add(&self, c: &AtomicU64, n: u64) {
        if self.single_writer {
            // The scrape only reads; a plain load and store cannot lose an increment.
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn bump(&self, c: &AtomicU64) {
        self.add(c, 1);
    }

    /// Counts one answered query.
    pub fn record(&self, outcome: &Outcome, tcp: bool, elapsed: Duration) {
        let t = QTYPES
            .iter()
            .position(|(c, _)| *c == outcome.qtype)
            .unwrap_or(QTYPES.len() - 1);
        let r = RCODES
            .iter()
            .position(|(c, _)| *c == outcome.rcode)
            .unwrap_or(RCODES.len() - 1);
        self.bump(&self.queries[t][r]);
        if outcome.truncated {
            self.bump(&self.truncated);
        }
        self.bump(if tcp { &self.tcp } else { &self.udp });
        let us = elapsed.as_micros() as u64;
        let b = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.bump(&self.latency[b]);
        self.latency_sum_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts a response withheld by rate limiting (`slipped`: sent truncated instead).
    pub fn record_rate_limited(&self, slipped: bool) {
        self.bump(&self.rate_limited[usize::from(slipped)]);
    }
}

/// Sums every socket task's [`DnsStats`].
#[derive(Debug, Default)]
struct DnsCollector {
    stats: Mutex<Vec<Arc<DnsStats>>>,
}

fn sum(stats: &[Arc<DnsStats>], f: impl Fn(&DnsStats) -> &AtomicU64) -> u64 {
    stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    qtype: &'static str,
    rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.stats.lock().expect("stats lock").clone();
        let mut e = encoder.encode_descriptor(
            "dns_queries",
            "DNS queries answered, by query type and response code",
            None,
            MetricType::Counter,
        )?;
        for (t, (_, qtype)) in QTYPES.iter().enumerate() {
            for (r, (_, rcode)) in RCODES.iter().enumerate() {
                let n = sum(&stats, |s| &s.queries[t][r]);
                if n > 0 {
                    ConstCounter::new(n).encode(e.encode_family(&QueryLabels { qtype, rcode })?)?;
                }
            }
        }
        let mut e = encoder.encode_descriptor(
            "dns_transport_queries",
            "DNS queries answered, by transport",
            None,
            MetricType::Counter,
        )?;
        for (transport, f) in [("udp", 0), ("tcp", 1)] {
            let n = sum(&stats, |s| if f == 0 { &s.udp } else { &s.tcp });
            ConstCounter::new(n).encode(e.encode_family(&TransportLabels { transport })?)?;
        }
        let truncated = ConstCounter::new(sum(&stats, |s| &s.truncated));
        truncated.encode(encoder.encode_descriptor(
            "dns_truncated",
            "UDP answers sent with TC set because they did not fit",
            None,
            MetricType::Counter,
        )?)?;
        let mut e = encoder.encode_descriptor(
            "dns_rate_limited",
            "Responses withheld by response rate limiting: dropped, or slipped (sent truncated)",
            None,
            MetricType::Counter,
        )?;
        for (i, action) in ["dropped", "slipped"].into_iter().enumerate() {
            let n = sum(&stats, |s| &s.rate_limited[i]);
            ConstCounter::new(n).encode(e.encode_family(&ActionLabels { action })?)?;
        }
        // Per-bucket counts: the encoder makes them cumulative.
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
        for (i, le) in LATENCY_BUCKETS_US.iter().enumerate() {
            buckets.push((*le as f64 / 1e6, sum(&stats, |s| &s.latency[i])));
        }
        let overflow = sum(&stats, |s| &s.latency[LATENCY_BUCKETS_US.len()]);
        buckets.push((f64::INFINITY, overflow));
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum_s = sum(&stats, |s| &s.latency_sum_ns) as f64 / 1e9;
        let e = encoder.encode_descriptor(
            "dns_answer_duration_seconds",
            "Time from receiving a query to having its answer ready",
            None,
            MetricType::Histogram,
        )?;
        let mut e = e;
        e.encode_histogram::<NoLabelSet>(sum_s, count, &buckets, None)?;
        Ok(())
    }
}

/// Warm-standby answers per site, read from the current snapshot's counters at scrape time:
/// of n answers that could be warm, exactly ⌊n × share⌋ were.
#[derive(Default)]
struct WarmCollector {
    snapshot: OnceLock<Arc<ArcSwap<Snapshot>>>,
}

impl std::fmt::Debug for WarmCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WarmCollector")
    }
}

impl Collector for WarmCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(snapshot) = self.snapshot.get() else {
            return Ok(());
        };
        let snapshot = snapshot.load();
        let sites: Vec<(usize, &crate::topology::Site)> = snapshot
            .topology
            .sites
            .iter()
            .enumerate()
            .filter(|(_, s)| s.warm_share > 0.0)
            .collect();
        if sites.is_empty() {
            return Ok(());
        }
        let mut e = encoder.encode_descriptor(
            "warm_answers",
            "Answers that listed the first fallback site at the local preference (warm standby)",
            None,
            MetricType::Counter,
        )?;
        for (id, site) in &sites {
            let n = snapshot.warm.eligible(*id);
            let warm = (n as f64 * site.warm_share).floor() as u64;
            ConstCounter::new(warm).encode(e.encode_family(&SiteLabels {
                site: site.name.clone(),
            })?)?;
        }
        let mut e = encoder.encode_descriptor(
            "warm_eligible_answers",
            "Answers of sites with a warm_share, warm or not",
            None,
            MetricType::Counter,
        )?;
        for (id, site) in &sites {
            let n = snapshot.warm.eligible(*id);
            ConstCounter::new(n).encode(e.encode_family(&SiteLabels {
                site: site.name.clone(),
            })?)?;
        }
        Ok(())
    }
}

/// The process as the kernel and the runtime see it: open file descriptors, resident memory,
/// live tasks. What a soak test watches for leaks.
#[derive(Default)]
struct ProcessCollector {
    runtime: OnceLock<tokio::runtime::Handle>,
}

impl std::fmt::Debug for ProcessCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessCollector")
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let fds = entries.count() as i64;
            let e = encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(fds).encode(e)?;
        }
        if let Some(rss) = resident_bytes() {
            let e = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(rss as i64).encode(e)?;
        }
        if let Some(rt) = self.runtime.get() {
            let tasks = rt.metrics().num_alive_tasks() as i64;
            let e = encoder.encode_descriptor(
                "runtime_alive_tasks",
                "Tasks alive in the async runtime (probes, connections, listeners)",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(tasks).encode(e)?;
        }
        Ok(())
    }
}

/// VmRSS from /proc/self/status, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Labels of one host.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub site: String,
    pub host: String,
}

/// Labels of one probed address and its result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub site: String,
    pub host: String,
    pub address: String,
    pub result: &'static str,
}

/// Labels of one address.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AddressLabels {
    pub site: String,
    pub host: String,
    pub address: String,
}

/// Labels of a state change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub site: String,
    pub host: String,
    pub address: String,
    pub to: &'static str,
}

/// Labels of a site's answer mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    pub site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type HistogramCtor = fn() -> Histogram;

/// Every metric smarthostd exports.
pub struct Metrics {
    registry: Registry,
    dns: Arc<DnsCollector>,
    warm: Arc<WarmCollector>,
    process: Arc<ProcessCollector>,
    pub probe_results: Family<ProbeLabels, Counter>,
    pub probe_duration: Family<HostLabels, Histogram, HistogramCtor>,
    pub host_up: Family<HostLabels, Gauge>,
    pub host_drained: Family<HostLabels, Gauge>,
    pub address_up: Family<AddressLabels, Gauge>,
    pub transitions: Family<TransitionLabels, Counter>,
    /// 0 normal, 1 remote hosts only, 2 failsafe.
    pub site_mode: Family<SiteLabels, Gauge>,
    pub generation: Gauge,
    reloads: Family<ResultLabels, Counter>,
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
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("smarthostd");
        let dns = Arc::new(DnsCollector::default());
        registry.register_collector(Box::new(dns.clone()));
        let warm = Arc::new(WarmCollector::default());
        registry.register_collector(Box::new(warm.clone()));
        let process = Arc::new(ProcessCollector::default());
        registry.register_collector(Box::new(process.clone()));
        let m = Self {
            dns,
            warm,
            process,
            probe_results: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram as HistogramCtor),
            host_up: Family::default(),
            host_drained: Family::default(),
            address_up: Family::default(),
            transitions: Family::default(),
            site_mode: Family::default(),
            generation: Gauge::default(),
            reloads: Family::default(),
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
            "1 while an address is up (or not yet probed)",
            m.address_up.clone(),
        );
        registry.register(
            "transitions",
            "Address state changes",
            m.transitions.clone(),
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
            "config_reloads",
            "Configuration reloads by result",
            m.reloads.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self { registry, ..m }
    }

    /// A new set of DNS counters; `single_writer` when one thread alone will write them.
    pub fn dns_stats(&self, single_writer: bool) -> Arc<DnsStats> {
        let stats = Arc::new(DnsStats {
            single_writer,
            ..DnsStats::default()
        });
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
            let _ = self.process.runtime.set(rt);
        }
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
