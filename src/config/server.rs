//! `[server]`: where smarthostd listens, keeps its state and takes the operator's commands, and
//! `[server.rate_limit]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::beside;
use super::cookies::CookiesConfig;

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
