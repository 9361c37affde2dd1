//! The standard process metrics, under the names every stock dashboard and alert expects
//! (`process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_start_time_seconds`), read from `/proc/self` at scrape time: no prefix, so that a
//! Node or Go exporter's panels work on smarthostd unchanged.

use std::sync::OnceLock;

use nix::unistd::{SysconfVar, sysconf};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What a scrape reads from `/proc/self/stat`, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// User and system CPU time, in clock ticks.
    cpu_ticks: u64,
    /// When the process started, in clock ticks after boot.
    start_ticks: u64,
    /// Virtual memory size, in bytes.
    vsize: u64,
    /// Resident set size, in pages.
    rss_pages: u64,
}

/// Reads the process's CPU time, memory, descriptors and start time at scrape time.
#[derive(Default)]
pub(super) struct ProcessCollector {
    /// Seconds since the epoch when the process started: fixed, so read once.
    start_time: OnceLock<Option<f64>>,
}

impl std::fmt::Debug for ProcessCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessCollector")
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s));
        let ticks = clock_ticks();
        if let (Some(stat), Some(ticks)) = (stat, ticks) {
            let e = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(stat.cpu_ticks as f64 / ticks).encode(e)?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let e = encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(entries.count() as i64).encode(e)?;
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| parse_max_fds(&s))
        {
            let e = encoder.encode_descriptor(
                "process_max_fds",
                "Most file descriptors the process may open (soft limit)",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(max as i64).encode(e)?;
        }
        if let Some(stat) = stat {
            if let Some(page) = page_size() {
                let e = encoder.encode_descriptor(
                    "process_resident_memory_bytes",
                    "Resident memory size, in bytes",
                    None,
                    MetricType::Gauge,
                )?;
                ConstGauge::new((stat.rss_pages * page) as i64).encode(e)?;
            }
            let e = encoder.encode_descriptor(
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(stat.vsize as i64).encode(e)?;
        }
        let start = *self.start_time.get_or_init(|| {
            let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
            Some(boot as f64 + stat?.start_ticks as f64 / ticks?)
        });
        if let Some(start) = start {
            let e = encoder.encode_descriptor(
                "process_start_time_seconds",
                "When the process started, in seconds since the Unix epoch",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(start).encode(e)?;
        }
        Ok(())
    }
}

/// Clock ticks per second, the unit of CPU and start times in `/proc`.
fn clock_ticks() -> Option<f64> {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => Some(t as f64),
        _ => None,
    }
}

fn page_size() -> Option<u64> {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => Some(p as u64),
        _ => None,
    }
}

/// The fields of `/proc/PID/stat` (proc(5)) the collector needs. The command name, field 2, is
/// in parentheses and may hold spaces and parentheses itself, so fields are counted from the
/// last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The soft "Max open files" limit of `/proc/PID/limits`; `None` when unlimited.
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `btime` line of `/proc/stat`: boot time, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_end_of_the_command_name() {
        // A command name with a space and a parenthesis, as a thread can set with prctl.
        let line = "4242 (smart) host) S 1 4242 4242 0 -1 4194560 1200 0 3 0 150 75 0 0 20 0 9 0 \
                    123456 1048576000 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 \
                    17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 225,
                start_ticks: 123456,
                vsize: 1048576000,
                rss_pages: 2048,
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no command name"), None);
    }

    #[test]
    fn max_fds_is_the_soft_limit_and_unlimited_is_none() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            65536                524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(65536));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_fds(unlimited), None);
        assert_eq!(parse_max_fds("Max processes 100 100 processes\n"), None);
    }

    #[test]
    fn boot_time_comes_from_the_btime_line() {
        let stat = "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 0\nctxt 99\nbtime 1700000000\nprocesses 5\n";
        assert_eq!(parse_boot_time(stat), Some(1_700_000_000));
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
    }

    #[test]
    fn this_process_reads_as_sane_figures() {
        let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(stat.vsize > 0 && stat.rss_pages > 0, "{stat:?}");
        assert!(clock_ticks().is_some() && page_size().is_some());
        let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").unwrap()).unwrap();
        assert!(boot > 1_000_000_000, "{boot}");
    }
}
