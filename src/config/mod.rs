//! The operator's TOML file: what smarthostd serves and probes.
//!
//! - [`Config`] and its tables mirror the file one to one (`serde`, `deny_unknown_fields`), with
//!   documented defaults; `zones/smarthost.toml` is the commented reference.
//! - [`load`] reads the file, deserializes it, runs [`validate`](validate::validate) for the
//!   cross-references serde cannot see, and reports every problem as a [`ConfigError`] that names
//!   file, line and key path.
//! - [`reputation`]: `[reputation]` and `sites.<name>.egress`, the blocklist checks.
//! - [`cluster`]: `[cluster]`, the other instances serving the same zone.
//! - [`tlsa`]: `sites.<name>.hosts[].tlsa` and `tls_key`, the relays' pinned keys, and whether
//!   they can be published (`[dnssec]`).
//! - [`dnssec`]: `[dnssec]`, the signing keys' folder and the signatures' lifetime.

mod admin;
pub(crate) mod cluster;
mod cookies;
pub(crate) mod dnssec;
mod error;
mod load;
mod locate;
pub(crate) mod reputation;
pub(crate) mod tlsa;
pub(crate) mod token;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use ipnet::IpNet;
use serde::Deserialize;

pub(crate) use admin::host_name;
pub use cluster::ClusterConfig;
pub use cookies::{CookieSecret, CookiesConfig};
pub use dnssec::{DnssecConfig, KeyAlgorithm};
pub use error::ConfigError;
pub use load::{load, parse};
pub use reputation::{Action, ListConfig, ReputationConfig};
pub use token::{AdminToken, TOKEN_ENV};

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
}

/// `[server]`: where smarthostd listens and keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// DNS listen addresses; each gets UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets per listen address (SO_REUSEPORT); 0 means one per CPU.
    pub udp_sockets: usize,
    /// The EDNS UDP payload size we advertise and cap UDP answers at (RFC 6891, DNS flag day 2020).
    pub edns_udp_payload: u16,
    /// A TCP client that sends nothing for this long is disconnected.
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections across all listeners; when all are taken, the one that has made
    /// no progress for longest is closed to admit a new client.
    pub tcp_max_connections: usize,
    /// Queries answered on one TCP connection before it is closed; 0: no limit (as NSD's
    /// `tcp-query-count`), since closing loses the queries a pipelining client has in flight.
    pub tcp_max_queries: usize,
    /// The admin HTTP listener (metrics, status, drain, reload).
    pub admin: Option<SocketAddr>,
    /// Concurrent admin connections; when all are taken the least active one is closed.
    pub admin_max_connections: usize,
    /// Bearer token for the mutating admin endpoints (also `SMARTHOSTD_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// A file holding the bearer token, read at start and on every reload; relative to the
    /// config file's folder. Others than its owner and group must not be able to read it.
    pub admin_token_file: Option<PathBuf>,
    /// Host names (besides this listener's address and `localhost`) that the admin API answers
    /// to: the names of a reverse proxy or of this machine that browsers and scrapers use. Any
    /// other `Host` is refused, so that a DNS rebinding page cannot reach the API.
    pub admin_hosts: Vec<String>,
    /// A UNIX socket serving the admin API to whoever may open it (file permissions decide,
    /// as for knotc and unbound-control): state changes on it need no token. Relative to the
    /// config file's folder.
    pub control_socket: Option<PathBuf>,
    /// Folder for what is kept across restarts (drains, last known addresses); relative to the
    /// config file's folder; default: that folder. Locked: one instance per folder.
    pub state_dir: Option<PathBuf>,
    /// Resolvers whose EDNS Client Subnet option is believed (RFC 7871).
    pub trusted_resolvers: Vec<IpNet>,
    /// Networks that may query; others are answered REFUSED. Empty (the default): everyone.
    pub allow_query: Vec<IpNet>,
    /// Response rate limiting per client prefix.
    pub rate_limit: RateLimitConfig,
    /// DNS cookie secrets (RFC 7873, RFC 9018).
    pub cookies: CookiesConfig,
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

/// The index of a network interface by name; 0 (no scope) when there is none.
pub fn interface_index(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or(0)
}

/// The default DNS port on loopback: no root needed, nothing exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// The default admin listener.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:8053";

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec![DEFAULT_LISTEN.parse().expect("valid default address")],
            udp_sockets: 0,
            edns_udp_payload: 1232,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 256,
            tcp_max_queries: 0,
            admin: Some(DEFAULT_ADMIN.parse().expect("valid default address")),
            admin_max_connections: 32,
            admin_token: None,
            admin_token_file: None,
            admin_hosts: Vec::new(),
            control_socket: None,
            state_dir: None,
            trusted_resolvers: Vec::new(),
            allow_query: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            cookies: CookiesConfig::default(),
        }
    }
}

impl ServerConfig {
    /// The state directory, resolved against the folder of the config at `config_path`.
    pub fn state_dir_path(&self, config_path: &std::path::Path) -> PathBuf {
        match &self.state_dir {
            Some(d) => beside(config_path, d),
            None => config_path
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .to_path_buf(),
        }
    }

    /// The control socket's path, resolved against the folder of the config at `config_path`.
    pub fn control_socket_path(&self, config_path: &std::path::Path) -> Option<PathBuf> {
        self.control_socket
            .as_deref()
            .map(|p| beside(config_path, p))
    }

    /// The admin token file's path, resolved against the folder of the config at `config_path`.
    pub fn admin_token_file_path(&self, config_path: &std::path::Path) -> Option<PathBuf> {
        self.admin_token_file
            .as_deref()
            .map(|p| beside(config_path, p))
    }

    /// The keys of `[server]` that differ in `new` and only take effect after a restart
    /// (`trusted_resolvers`, `allow_query`, `admin_token`, `admin_token_file` and
    /// `admin_hosts` reload).
    pub fn restart_needed(&self, new: &Self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |changed: bool, key| {
            if changed {
                keys.push(key);
            }
        };
        check(self.listen != new.listen, "server.listen");
        check(self.admin != new.admin, "server.admin");
        check(
            self.control_socket != new.control_socket,
            "server.control_socket",
        );
        check(
            self.admin_max_connections != new.admin_max_connections,
            "server.admin_max_connections",
        );
        check(self.state_dir != new.state_dir, "server.state_dir");
        check(self.udp_sockets != new.udp_sockets, "server.udp_sockets");
        check(
            self.edns_udp_payload != new.edns_udp_payload,
            "server.edns_udp_payload",
        );
        check(
            self.tcp_idle_timeout != new.tcp_idle_timeout,
            "server.tcp_idle_timeout",
        );
        check(
            self.tcp_max_connections != new.tcp_max_connections,
            "server.tcp_max_connections",
        );
        check(
            self.tcp_max_queries != new.tcp_max_queries,
            "server.tcp_max_queries",
        );
        check(self.rate_limit != new.rate_limit, "server.rate_limit");
        check(self.cookies != new.cookies, "server.cookies");
        keys
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

/// `[server.rate_limit]`: response rate limiting in the manner of BIND and Knot RRL.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Off switch; on by default at a rate no real resolver reaches.
    pub enabled: bool,
    /// UDP responses per second allowed to one client prefix.
    pub responses_per_second: u32,
    /// Every Nth limited response is sent truncated (TC) so a real client retries over TCP;
    /// 0 drops them all.
    pub slip: u32,
    /// IPv4 client prefix length that shares one budget.
    pub ipv4_prefix: u8,
    /// IPv6 client prefix length that shares one budget.
    pub ipv6_prefix: u8,
    /// Clients never limited; default: loopback (local tools and benchmarks).
    pub exempt: Vec<IpNet>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            responses_per_second: 2000,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![
                "127.0.0.0/8".parse().expect("valid network"),
                "::1/128".parse().expect("valid network"),
            ],
        }
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

/// `[sites.<name>]`: one site with its relays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's smart hosts, in the order answers list them.
    pub hosts: Vec<HostConfig>,
    /// Ordered fallback sites at 20, 30, ...; absent: every other site at 20.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    /// Client networks whose queries for a shared name get this site's view.
    #[serde(default)]
    pub clients: Vec<IpNet>,
    /// Share of answers (0.0 to 0.5) that also list the first fallback site's hosts at the local
    /// preference, to keep their egress reputation warm.
    #[serde(default)]
    pub warm_share: f64,
    /// The public addresses the site's relays send from, as receivers see them: what the
    /// blocklists of `[reputation]` are asked about.
    #[serde(default)]
    pub egress: Vec<IpAddr>,
}

/// One smart host: a name in the zone, and the addresses it is reached at.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The first label of `<host>.<site>.<origin>`.
    pub name: String,
    /// Fixed addresses; each is probed on its own. A link-local IPv6 address names its
    /// interface: `"fe80::25%eth0"`.
    #[serde(default)]
    pub addresses: Vec<RelayAddress>,
    /// A DNS name to resolve for the addresses instead (re-resolved when its TTL runs out).
    #[serde(default)]
    pub fqdn: Option<String>,
    /// SMTP port to probe; default 25.
    #[serde(default)]
    pub port: Option<u16>,
    /// Per-host probe timeout override.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Per-host STARTTLS override.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// The name the relay's certificate must carry when `probe.tls_verify` is on; default: the
    /// `fqdn`, or for a host given by `addresses`, the address itself (with TLSA records: the
    /// host's name in the zone, which DANE senders send as SNI).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// TLSA records that pin the relay's key or its CA, `"3 1 1 <hex>"`: probed on every probe
    /// (with STARTTLS, whatever `starttls` says), several during a key rollover.
    #[serde(default)]
    pub tlsa: Vec<crate::dane::Tlsa>,
    /// The relay's PEM certificate (or chain, or public key), relative to the config's folder,
    /// from which its `3 1 1` record is derived; read at start and on every reload.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// A relay's address as written: an IP address, with `%interface` for a link-local IPv6 one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayAddress {
    /// The address itself: probed, and served in the host's A/AAAA records.
    pub ip: IpAddr,
    /// The interface of a link-local address (`eth0` in `fe80::25%eth0`).
    pub interface: Option<String>,
}

impl std::str::FromStr for RelayAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, interface) = match s.split_once('%') {
            Some((ip, interface)) => (ip, Some(interface.to_string())),
            None => (s, None),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address"))?;
        if interface.as_deref() == Some("") {
            return Err(format!("{s:?}: the interface after % is empty"));
        }
        if interface.is_some() && !ip.is_ipv6() {
            return Err(format!("{s:?}: only an IPv6 address takes an %interface"));
        }
        Ok(Self { ip, interface })
    }
}

impl std::fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.interface {
            Some(i) => write!(f, "{}%{i}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

impl<'de> Deserialize<'de> for RelayAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The SMTP port probed when a host names none.
pub const DEFAULT_SMTP_PORT: u16 = 25;
