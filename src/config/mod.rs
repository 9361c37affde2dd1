//! The operator's TOML file: what smarthostd serves and probes.
//!
//! - [`Config`] and its tables mirror the file one to one (`serde`, `deny_unknown_fields`), with
//!   documented defaults; `zones/smarthost.toml` is the commented reference.
//! - [`load`] reads the file, deserializes it, runs [`validate`](validate::validate) for the
//!   cross-references serde cannot see, and reports every problem as a [`ConfigError`] that names
//!   file, line and key path.
//! - `server`: `[server]`, the sockets, state folder and admin listeners; `sites`: `[sites.<name>]`
//!   and each relay's address.
//! - [`reputation`]: `[reputation]` and `sites.<name>.egress`, the blocklist checks.
//! - [`cluster`]: `[cluster]`, the other instances serving the same zone.
//! - [`tlsa`]: `sites.<name>.hosts[].tlsa` and `tls_key`, the relays' pinned keys, and whether
//!   they can be published (`[dnssec]`).
//! - [`dnssec`]: `[dnssec]`, the signing keys' folder and the signatures' lifetime.
//! - [`transfer`]: `[transfer]`, the secondaries: who may transfer, TSIG keys, NOTIFY.

mod admin;
pub(crate) mod cluster;
mod cookies;
pub(crate) mod dnssec;
mod error;
mod load;
mod locate;
pub(crate) mod reputation;
mod server;
mod sites;
pub(crate) mod tlsa;
pub(crate) mod token;
pub(crate) mod transfer;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

pub(crate) use admin::host_name;
pub use cluster::ClusterConfig;
pub use cookies::{CookieSecret, CookiesConfig};
pub use dnssec::{DnssecConfig, KeyAlgorithm};
pub use error::ConfigError;
pub use load::{load, parse};
pub use reputation::{Action, ListConfig, ReputationConfig};
pub use server::{DEFAULT_ADMIN, DEFAULT_LISTEN, RateLimitConfig, ServerConfig};
pub use sites::{DEFAULT_SMTP_PORT, HostConfig, RelayAddress, SiteConfig, interface_index};
pub use token::{AdminToken, TOKEN_ENV};
pub use transfer::{NotifyAddress, TransferConfig, TsigAlgorithm, TsigKeyConfig};

/// The whole configuration, as read from one file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the file was read from; relative paths inside it resolve against its folder.
    #[serde(skip)]
    pub path: PathBuf,
    /// Sockets and process settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// The synthetic zone and the shape of its answers.
    pub zone: ZoneConfig,
    /// How smart hosts are health-checked.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// Shared names answered per client site (geo views).
    #[serde(default)]
    pub views: ViewsConfig,
    /// The sites, in file order; each site's name is its pseudo-domain's first label.
    pub sites: IndexMap<String, SiteConfig>,
    /// DNS blocklist checks of the sites' egress addresses; absent: none.
    #[serde(default)]
    pub reputation: Option<ReputationConfig>,
    /// The other instances serving the same zone; absent: this one stands alone.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// Signed answers: the keys and the signatures' lifetime; absent: the zone is unsigned.
    #[serde(default)]
    pub dnssec: Option<DnssecConfig>,
    /// Zone transfers to secondaries (AXFR/IXFR, NOTIFY, TSIG); absent: every transfer refused.
    #[serde(default)]
    pub transfer: Option<TransferConfig>,
}

impl Config {
    /// Whether state changes over TCP need a bearer token: `server.admin_token`,
    /// `server.admin_token_file` or the environment names one.
    pub fn has_admin_token(&self) -> bool {
        self.server.admin_token.is_some()
            || self.server.admin_token_file.is_some()
            || std::env::var(TOKEN_ENV).is_ok_and(|t| !t.is_empty())
    }
}

/// `path` as written in the config at `config_path`: a relative path is in the config's folder.
fn beside(config_path: &std::path::Path, path: &std::path::Path) -> PathBuf {
    let dir = config_path.parent().unwrap_or(std::path::Path::new(""));
    if path.is_relative() {
        dir.join(path)
    } else {
        path.to_path_buf()
    }
}

/// `[zone]`: the synthetic zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone apex, e.g. `smarthost.internal`.
    pub origin: String,
    /// RFC 1035 master file with the SOA, NS and any static records; relative to the config file.
    pub file: PathBuf,
    /// TTL of synthesized records.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// TTL of answers naming a host that is down or changing state; default half of `ttl`.
    #[serde(default, with = "humantime_serde")]
    pub degraded_ttl: Option<Duration>,
    /// MX preference of a site's own hosts.
    #[serde(default = "default_local_preference")]
    pub local_preference: u16,
    /// MX preference of the first (or every, without `fallback`) fallback site.
    #[serde(default = "default_fallback_preference")]
    pub fallback_preference: u16,
    /// Added per position in an ordered `fallback` list: 20, 30, 40, ...
    #[serde(default = "default_fallback_step")]
    pub fallback_step: u16,
}

fn default_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_local_preference() -> u16 {
    10
}
fn default_fallback_preference() -> u16 {
    20
}
fn default_fallback_step() -> u16 {
    10
}

impl ZoneConfig {
    /// The TTL answers carry while everything they name is steady.
    pub fn ttl_secs(&self) -> u32 {
        duration_secs(self.ttl)
    }

    /// The TTL answers carry while a host they name is down or in transition.
    pub fn degraded_ttl_secs(&self) -> u32 {
        match self.degraded_ttl {
            Some(ttl) => duration_secs(ttl),
            None => self.ttl_secs() / 2,
        }
    }

    /// Where the zone file is, resolved against the config file's folder.
    pub fn file_path(&self, config_path: &std::path::Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if self.file.is_relative() => dir.join(&self.file),
            _ => self.file.clone(),
        }
    }
}

fn duration_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// `[probe]`: SMTP health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Time between probes of one address (±10 % jitter).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound on each step of a probe: connect, greeting, EHLO reply, TLS handshake.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive successes that bring a down address up.
    pub rise: u32,
    /// Consecutive failures that take an up address down.
    pub fall: u32,
    /// The name we announce in EHLO; default: this machine's host name.
    pub ehlo: Option<String>,
    /// Require STARTTLS to be advertised and a TLS handshake to complete.
    pub starttls: bool,
    /// Verify the relay's certificate when `starttls` is on (internal relays often self-sign).
    pub tls_verify: bool,
    /// PEM file of the CAs that sign relay certificates, for `tls_verify`; default: public roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Probes in flight at once, across all hosts.
    pub max_concurrent: usize,
    /// Name servers that resolve hosts given by `fqdn`; default: the system resolver.
    pub resolver: Vec<SocketAddr>,
    /// The address probes connect from (relays of the other address family are probed from
    /// the system's choice); default: the system's choice. One of this machine's addresses.
    pub source_address: Option<IpAddr>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 2,
            ehlo: None,
            starttls: false,
            tls_verify: false,
            tls_ca_file: None,
            max_concurrent: 1024,
            resolver: Vec::new(),
            source_address: None,
        }
    }
}

/// `[views]`: one shared name answered for the site that asks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewsConfig {
    /// Names (relative to the origin, or absolute with a trailing dot) answered per client site,
    /// besides the apex.
    pub names: Vec<String>,
    /// The view for clients in no site's `clients`: a site name, or `"all"`.
    pub default: Option<String>,
}

/// The view keyword that lists every healthy host at one preference.
pub const VIEW_ALL: &str = "all";
