//! DNS counters on the hot path: each socket thread owns a [`DnsStats`] of plain atomics that
//! only it writes (TCP listeners share theirs), and [`DnsCollector`] sums them at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

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

/// What a query's DNS COOKIE option was (RFC 7873), as counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieSeen {
    /// No COOKIE option: not counted.
    #[default]
    Absent,
    /// A client cookie alone: a client's first query to us, or after it forgot our cookie.
    ClientOnly,
    /// A server cookie that we (or an instance sharing our secrets) made, recently.
    Valid,
    /// A server cookie we did not make, made with a retired secret, or too old: forged, replayed,
    /// stale, or from a server that shares the address but not the secrets.
    Invalid,
    /// A COOKIE option of a length RFC 7873 forbids, or two of them: answered FORMERR.
    Malformed,
}

/// The `cookie` label of each counted [`CookieSeen`], in its order.
const COOKIES: [(CookieSeen, &str); 4] = [
    (CookieSeen::ClientOnly, "client_only"),
    (CookieSeen::Valid, "valid"),
    (CookieSeen::Invalid, "invalid"),
    (CookieSeen::Malformed, "malformed"),
];

/// What an answered query counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The query type: A, AAAA, MX, NS, SOA and ANY are counted by name, the rest as `other`.
    pub qtype: u16,
    /// The full RCODE (BADVERS is 16).
    pub rcode: u16,
    /// Sent with TC set.
    pub truncated: bool,
    /// Refused by `server.allow_query`.
    pub denied: bool,
}

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
    /// Queries refused by `server.allow_query`.
    denied: AtomicU64,
    /// Queries with a COOKIE option, by what it was ([`COOKIES`]).
    cookies: [AtomicU64; COOKIES.len()],
    /// Only one thread writes these counters, so an increment needs no locked instruction.
    single_writer: bool,
}

impl DnsStats {
    /// Counters for one writer thread (`single_writer`) or for several.
    pub(super) fn new(single_writer: bool) -> Self {
        Self {
            single_writer,
            ..Self::default()
        }
    }

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
    pub fn record(&self, outcome: &Answered, tcp: bool) {
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
        if outcome.denied {
            self.bump(&self.denied);
        }
        self.bump(if tcp { &self.tcp } else { &self.udp });
    }

    /// Counts `queries` answers that each took `elapsed` from their query's arrival to being
    /// ready: a UDP batch's answers leave together, so they share one reading of the clock.
    pub fn record_duration(&self, elapsed: Duration, queries: u64) {
        if queries == 0 {
            return;
        }
        let us = elapsed.as_micros() as u64;
        let b = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.add(&self.latency[b], queries);
        self.add(&self.latency_sum_ns, elapsed.as_nanos() as u64 * queries);
    }

    /// Counts a query's COOKIE option, before rate limiting (which a valid one is exempt from).
    pub fn record_cookie(&self, seen: CookieSeen) {
        if seen == CookieSeen::Absent {
            return;
        }
        if let Some(i) = COOKIES.iter().position(|(c, _)| *c == seen) {
            self.bump(&self.cookies[i]);
        }
    }

    /// Counts a response withheld by rate limiting (`slipped`: sent truncated instead).
    pub fn record_rate_limited(&self, slipped: bool) {
        self.bump(&self.rate_limited[usize::from(slipped)]);
    }
}

/// Sums every socket task's [`DnsStats`].
#[derive(Debug, Default)]
pub(super) struct DnsCollector {
    pub(super) stats: Mutex<Vec<Arc<DnsStats>>>,
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
struct CookieLabels {
    cookie: &'static str,
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
        let denied = ConstCounter::new(sum(&stats, |s| &s.denied));
        denied.encode(encoder.encode_descriptor(
            "dns_refused_by_acl",
            "Queries refused because the client is not in server.allow_query",
            None,
            MetricType::Counter,
        )?)?;
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
        let mut e = encoder.encode_descriptor(
            "dns_cookies",
            "Queries with a DNS COOKIE option (RFC 7873), by what it held: a client cookie only, \
             a valid server cookie (exempt from rate limiting), an invalid one, or a malformed option",
            None,
            MetricType::Counter,
        )?;
        for (i, (_, cookie)) in COOKIES.iter().enumerate() {
            let n = sum(&stats, |s| &s.cookies[i]);
            ConstCounter::new(n).encode(e.encode_family(&CookieLabels { cookie })?)?;
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
