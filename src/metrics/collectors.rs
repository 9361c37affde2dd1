//! Metrics read at scrape time from elsewhere: warm-standby counts from the current snapshot,
//! the runtimes' live tasks, and readiness.

use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::sync::watch;

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

/// Live tasks of the async runtimes: what a soak test watches for leaked probes and
/// connections, beside the process's descriptors.
#[derive(Default)]
pub(super) struct RuntimeCollector {
    pub(super) runtimes: Mutex<Vec<tokio::runtime::Handle>>,
}

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
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

/// Whether the first probe round is done, read from the same channel as `/readyz` so that the
/// two never disagree. 0 until the server hands the channel over.
#[derive(Default)]
pub(super) struct ReadyCollector {
    pub(super) ready: OnceLock<watch::Receiver<bool>>,
}

impl std::fmt::Debug for ReadyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadyCollector")
    }
}

impl Collector for ReadyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ready = self.ready.get().is_some_and(|r| *r.borrow());
        let e = encoder.encode_descriptor(
            "ready",
            "1 once the first probe round is done and answers reflect health, 0 before",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(ready)).encode(e)
    }
}
