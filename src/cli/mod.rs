//! The command line (clap): `serve` (what a bare `smarthostd` does), `check-config`, the admin
//! clients `status`, `events`, `drain`, `drains`, `undrain`, `reload`, `explain`, `tlsa` (the
//! record of the key a relay presents) and `dnssec` (`keygen`, `ds`); the hidden `generate`
//! writes man pages and shell completions for packaging.

mod check;
mod client;
mod cluster;
mod dnssec;
mod endpoint;
mod error;
mod events;
mod explain;
mod generate;
mod logging;
mod mta;
mod serve;
mod terminal;
mod tlsa;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use check::postfix_warnings;
pub use explain::{ExplainError, Explanation, explain};
pub use mta::{Lookup, Mta};

/// The config a bare `smarthostd` serves and the admin clients read: in a source tree the
/// shipped one, on loopback port 5353; a package sets its own when it builds the binary
/// (`SMARTHOSTD_DEFAULT_CONFIG=/etc/smarthostd/smarthost.toml`, see deploy/debian/build-deb.sh).
pub const DEFAULT_CONFIG: &str = match option_env!("SMARTHOSTD_DEFAULT_CONFIG") {
    Some(path) => path,
    None => "zones/smarthost.toml",
};

/// Health-checked, site-aware DNS for outbound mail smart hosts.
///
/// smarthostd is an authoritative DNS server for a synthetic zone such as smarthost.internal.
/// It probes every smart host (outbound mail relay) over SMTP and answers each site's
/// pseudo-domain, e.g. oxford.smarthost.internal MX, with that site's healthy relays first and
/// the other sites' after; with every relay configured when none is healthy, so that senders
/// queue and retry rather than bounce. Without a subcommand it serves, as `serve` does.
#[derive(Debug, Parser)]
#[command(
    name = "smarthostd",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the zone and probe the smart hosts (the default).
    Serve(ServeArgs),
    /// Check a config and its zone file; exit 0 when valid.
    CheckConfig {
        /// The config file.
        #[arg(default_value = DEFAULT_CONFIG)]
        path: PathBuf,
    },
    /// Show every site, host and address as the running server sees it.
    Status {
        /// Also every instance of the cluster side by side: each one's verdict on each relay,
        /// the answer each serves, and whether its config differs.
        #[arg(long)]
        cluster: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List what happened, oldest first: state changes, drains, reloads, answer modes.
    Events(events::EventsArgs),
    /// Take a host out of the answers (it keeps being probed).
    Drain {
        /// The host, as SITE/HOST.
        target: String,
        /// End the drain by itself after this long (a maintenance window), e.g. 2h or 30m.
        #[arg(long = "for", value_name = "DURATION")]
        period: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List every drain the server keeps, also of hosts no longer configured.
    Drains(ClientArgs),
    /// Put a drained host back into the answers (or clear the drain of a removed host).
    Undrain {
        /// The host, as SITE/HOST.
        target: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make the running server re-read its config and zone file.
    Reload(ClientArgs),
    /// Resolve a domain as an MTA does and show the order hosts would be tried in.
    Explain {
        /// The domain a send connector or relayhost names, e.g. oxford.smarthost.internal.
        domain: String,
        /// The DNS server to ask (default: the system resolver).
        #[arg(long)]
        server: Option<SocketAddr>,
        /// The MTA, as it is pointed at the name (default: an MX-first one such as Postfix).
        #[arg(long, value_enum)]
        mta: Option<Mta>,
    },
    /// Connect to a relay, do STARTTLS and print the TLSA record (3 1 1) of the key it presents.
    ///
    /// Any certificate is accepted (the handshake signature is checked: the relay holds the
    /// key it shows). What the network shows is pinned only after comparing it with the key on
    /// the relay itself; the output says how.
    Tlsa {
        /// The relay: a host name (resolved with the system resolver; every address is tried)
        /// or an address, with an optional port: relay.example.org, 192.0.2.7:25,
        /// [2001:db8::7]:25.
        #[arg(value_name = "HOST[:PORT]")]
        target: String,
        /// Bound on each step: resolving, connecting, each reply, the TLS handshake.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// The name to announce in EHLO (default: this machine's host name).
        #[arg(long)]
        ehlo: Option<String>,
    },
    /// Signing keys: make one, or print what a resolver or a parent zone needs to trust them.
    #[command(subcommand)]
    Dnssec(dnssec::Dnssec),
    /// Write man pages or shell completions (packaging).
    #[command(hide = true, subcommand)]
    Generate(generate::Generate),
}

#[derive(Debug, Clone, Args)]
struct ServeArgs {
    /// The config file.
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Log lines as text or JSON (RUST_LOG sets the filter).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
struct ClientArgs {
    /// The admin API's TCP address, used alone (default: the config's control socket when it
    /// names one that exists, else its server.admin).
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The config file to read server.control_socket, server.admin and the token from
    /// (default: the one serve reads, unless --admin is given); it must load, or nothing is
    /// sent.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Bearer token for drain, undrain and reload over TCP (default: server.admin_token or the
    /// file server.admin_token_file of the config); the control socket needs none.
    #[arg(long, env = crate::config::TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,
}

/// Runs the command line; the exit code says whether it worked, and if not, how it failed
/// ([`error`]: 1, 2 bad usage or config, 3 server unreachable, 4 server refused).
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        None => serve::run(&cli.serve),
        Some(Command::Serve(args)) => serve::run(&args),
        Some(Command::CheckConfig { path }) => check::run(&path),
        Some(Command::Status { cluster, client }) => client::status(&client, cluster),
        Some(Command::Events(args)) => events::run(&args),
        Some(Command::Drain {
            target,
            period,
            client,
        }) => client::drain(&client, &target, Some(period.as_deref())),
        Some(Command::Drains(args)) => client::drains(&args),
        Some(Command::Undrain { target, client }) => client::drain(&client, &target, None),
        Some(Command::Reload(args)) => client::reload(&args),
        Some(Command::Explain {
            domain,
            server,
            mta,
        }) => explain::run(&domain, server, mta),
        Some(Command::Tlsa {
            target,
            timeout,
            ehlo,
        }) => tlsa::run(&target, timeout, ehlo),
        Some(Command::Dnssec(command)) => dnssec::run(&command),
        Some(Command::Generate(what)) => generate::run(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("smarthostd: {error}");
            error.exit_code()
        }
    }
}
