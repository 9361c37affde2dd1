//! Blocklist metrics: which egress address is listed where, each site's demotion, and the
//! lookups by result. Written by the health task; every series of a configured address and
//! list exists from the start (0), so that alerts see the first listing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of one egress address on one list.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EgressLabels {
    /// The name of the site with this egress address.
    pub site: String,
    /// The egress address, as text.
    pub address: String,
    /// The list's `name`.
    pub list: String,
}

/// Labels of one site.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DemotedLabels {
    /// The site's name.
    pub site: String,
}

/// Labels of a lookup's result on one list.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// The list's `name`.
    pub list: String,
    /// `listed`, `clean`, `error` or `timeout`.
    pub result: &'static str,
}

/// The blocklist families.
#[derive(Debug, Default)]
pub struct ReputationMetrics {
    /// 1 while the address is listed on the list.
    pub listed: Family<EgressLabels, Gauge>,
    /// 1 while the site's relays are moved behind clean sites (listed, or held after a
    /// delisting).
    pub demoted: Family<DemotedLabels, Gauge>,
    /// Lookups by result: listed, clean, error (an error code, SERVFAIL), timeout.
    pub lookups: Family<LookupLabels, Counter>,
}

impl ReputationMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "egress_listed",
            "1 while a site's egress address is listed on a DNS blocklist",
            self.listed.clone(),
        );
        registry.register(
            "site_demoted",
            "1 while a site's relays are moved behind clean sites for a blocklist listing (reputation.action = demote), also during the hold after a delisting",
            self.demoted.clone(),
        );
        registry.register(
            "reputation_lookups",
            "DNS blocklist lookups by list and result (listed, clean, error, timeout)",
            self.lookups.clone(),
        );
    }
}
