//! Metrics read at scrape time from elsewhere: warm-standby counts from the current snapshot,
//! and the process's descriptors, memory and runtime tasks.

use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::SiteLabels;
use crate::answer::Snapshot;

/// Warm-standby answers per site, read from the current snapshot's counters at scrape time:
/// of n answers that could be warm, exactly ⌊n × share⌋ were.
#[derive(Default)]
pub(super) struct WarmCollector {
    pub(super) snapshot: OnceLock<Arc<ArcSwap<Snapshot>>>,
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
pub(super) struct ProcessCollector {
    pub(super) runtimes: Mutex<Vec<tokio::runtime::Handle>>,
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
        let runtimes = self.runtimes.lock().expect("runtimes lock");
        if !runtimes.is_empty() {
            let tasks: usize = runtimes.iter().map(|r| r.metrics().num_alive_tasks()).sum();
            let tasks = tasks as i64;
            let e = encoder.encode_descriptor(
                "runtime_alive_tasks",
                "Tasks alive in the async runtimes (probes, connections, listeners)",
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
