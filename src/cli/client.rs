//! `status`, `drain`, `undrain`, `reload`: clients of the running server's admin API (and the
//! connection `events` uses too), over the control socket or TCP ([`endpoint`](super::endpoint)).

use std::path::PathBuf;
use std::time::Duration;

use axum::http::Method;

use super::ClientArgs;
use super::endpoint::{Connector, Endpoint, Reply, folder_group, path_segment, query};
use super::error::CliError;
use super::terminal::printable;
use crate::admin::ActionResult;
use crate::cluster::report::ClusterStatus;
use crate::config::{self, AdminToken};
use crate::events::history::History;
use crate::health::status::{DrainStatus, StatusReport};

pub(super) struct Admin {
    connector: Connector,
    /// Why the token file named by the config could not be read, for a refusal's message.
    token_problem: Option<String>,
}

impl Admin {
    /// The admin API of the server `args` name: with `--admin`, that TCP address alone;
    /// otherwise the config's control socket (when it names one that exists), then its
    /// `server.admin`. `--token` or the environment, else the config's token (or token file),
    /// goes with requests over TCP. A config that was named (or, without `--admin`, the default
    /// one) must load: a command never goes to another server than the one meant.
    pub(super) fn new(args: &ClientArgs) -> Result<Self, CliError> {
        let path = match (&args.config, args.admin) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(PathBuf::from(super::DEFAULT_CONFIG)),
        };
        let config = match &path {
            Some(path) => Some(config::load(path).map_err(|e| {
                CliError::Usage(format!(
                    "config error: {e} (nothing was sent; give --config PATH, or --admin ADDR)"
                ))
            })?),
            None => None,
        };
        let mut endpoints = Vec::new();
        match (args.admin, &config) {
            (Some(addr), _) => endpoints.push(Endpoint::Tcp(addr)),
            (None, Some(c)) => {
                // Tried unless it is certainly not there: a folder this user may not enter
                // hides it, and the refusal will say so.
                let socket = c.server.control_socket_path(&c.path).filter(|p| {
                    !matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                });
                if let Some(socket) = socket {
                    endpoints.push(Endpoint::Socket(socket));
                }
                if let Some(addr) = c.server.admin {
                    endpoints.push(Endpoint::Tcp(addr));
                }
                if endpoints.is_empty() {
                    return Err(CliError::Usage(format!(
                        "{} has no admin listener (server.admin) and no control socket (server.control_socket) to talk to",
                        c.path.display()
                    )));
                }
            }
            (None, None) => unreachable!("a config is loaded when --admin is not given"),
        }
        let mut token_problem = None;
        let token = match (&args.token, &config) {
            (Some(token), _) => Some(AdminToken::new(token.clone())),
            (None, Some(c)) => match (
                &c.server.admin_token,
                c.server.admin_token_file_path(&c.path),
            ) {
                (Some(token), _) => Some(AdminToken::new(token.clone())),
                (None, Some(file)) => match config::token::read_file(&file) {
                    Ok(token) => Some(token),
                    Err(e) => {
                        token_problem = Some(e.to_string());
                        None
                    }
                },
                (None, None) => None,
            },
            (None, None) => None,
        };
        Ok(Self {
            connector: Connector::new(endpoints, token)
                .map_err(|e| CliError::Failed(e.to_string()))?,
            token_problem,
        })
    }

    fn send(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<(Endpoint, Reply, String), CliError> {
        let sent = self
            .connector
            .send(method, path_and_query)
            .map_err(CliError::Unreachable)?;
        let (endpoint, reply, passed) = (sent.endpoint, sent.reply, sent.passed);
        let mut notes = String::new();
        for (skipped, why) in passed {
            notes.push_str(&format!("; {skipped} could not be used ({why})"));
            if let Endpoint::Socket(path) = &skipped
                && let Some(group) = folder_group(path)
            {
                notes.push_str(&format!(
                    ": root and members of the group {group} may use it"
                ));
            }
        }
        if let Some(problem) = &self.token_problem {
            notes.push_str(&format!("; {problem}"));
        }
        Ok((endpoint, reply, notes))
    }

    fn get(&self, path: &str) -> Result<String, CliError> {
        self.get_query(path, &[])
    }

    /// A GET with a query string, its values encoded.
    pub(super) fn get_query(&self, path: &str, pairs: &[(&str, &str)]) -> Result<String, CliError> {
        let target = format!("{path}{}", query(pairs));
        let (endpoint, reply, _) = self.send(Method::GET, &target)?;
        if !(200..300).contains(&reply.status) {
            return Err(CliError::Refused(format!(
                "{}: {} {}",
                endpoint.describe(&target),
                reply.status,
                printable(reply.body.trim())
            )));
        }
        Ok(reply.body)
    }

    fn post(&self, path: &str) -> Result<String, CliError> {
        let (endpoint, reply, notes) = self.send(Method::POST, path)?;
        let result: ActionResult = serde_json::from_str(&reply.body).map_err(|_| {
            let message = format!(
                "{}: {} {}",
                endpoint.describe(path),
                reply.status,
                printable(reply.body.trim())
            );
            if (200..300).contains(&reply.status) {
                CliError::Failed(message)
            } else {
                CliError::Refused(message)
            }
        })?;
        let peers = super::cluster::deliveries(&result.instances);
        if result.ok && result.saved != Some(false) {
            let text = format!("{}{}", printable(&result.message), peers.text);
            if peers.all_will_have_it {
                Ok(text)
            } else {
                Err(CliError::Failed(format!(
                    "{text}\nsome instances will not get this change (see above)"
                )))
            }
        } else if !result.instances.is_empty() {
            Err(CliError::Failed(format!(
                "{}{}",
                printable(&result.message),
                peers.text
            )))
        } else if reply.status == 401 || reply.status == 403 {
            // Say why this user could not act: the socket it could not open, the token file
            // it could not read.
            Err(CliError::Refused(format!(
                "refused by {endpoint}: {}{}",
                printable(&result.message),
                printable(&notes)
            )))
        } else if result.ok {
            // Done, and NOT SAVED: the change holds until a restart.
            Err(CliError::Failed(printable(&result.message)))
        } else {
            Err(CliError::Refused(printable(&result.message)))
        }
    }
}

pub(super) fn status(args: &ClientArgs, cluster: bool) -> Result<(), CliError> {
    let admin = Admin::new(args)?;
    let pairs: &[(&str, &str)] = if cluster { &[("cluster", "1")] } else { &[] };
    let status: ClusterStatus =
        serde_json::from_str(&admin.get_query("/status", pairs)?).map_err(|e| e.to_string())?;
    print!("{}", status_table(&status.status));
    if cluster {
        match &status.cluster {
            Some(c) => print!("{}", super::cluster::table(c)),
            None => println!("this instance has no [cluster]: it stands alone"),
        }
    }
    Ok(())
}

/// The status report as a table for a terminal.
pub(super) fn status_table(report: &StatusReport) -> String {
    let mut rows = vec![[
        "SITE".to_string(),
        "HOST".to_string(),
        "STATE".to_string(),
        "ADDRESS".to_string(),
        "LATENCY".to_string(),
        "REASON".to_string(),
    ]];
    for site in &report.sites {
        for host in &site.hosts {
            for a in &host.addresses {
                let state = if host.drained {
                    format!("drained ({})", a.state)
                } else {
                    a.state.clone()
                };
                rows.push([
                    site.name.clone(),
                    host.name.clone(),
                    state,
                    a.address.to_string(),
                    a.latency_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
                    a.reason
                        .clone()
                        .filter(|_| a.state != "up")
                        .unwrap_or_default(),
                ]);
            }
            if host.addresses.is_empty() {
                rows.push([
                    site.name.clone(),
                    host.name.clone(),
                    host.state.clone(),
                    "-".into(),
                    "-".into(),
                    "no addresses resolved".into(),
                ]);
            }
        }
    }
    let mut out = super::terminal::render(&rows);
    out.push_str(&format!(
        "generation {} · serial {}\n",
        report.generation, report.serial
    ));
    let stale: Vec<&str> = report
        .drains
        .iter()
        .filter(|d| !d.configured)
        .map(|d| d.key.as_str())
        .collect();
    if !stale.is_empty() {
        out.push_str(&format!(
            "drains of hosts no longer configured (clear with undrain): {}\n",
            printable(&stale.join(", "))
        ));
    }
    for site in &report.sites {
        let answer: Vec<String> = site
            .answer
            .iter()
            .map(|mx| format!("{} {}", mx.preference, mx.exchange))
            .collect();
        out.push_str(&format!(
            "{} MX ({:?}): {}\n",
            site.domain,
            site.mode,
            answer.join(", ")
        ));
        for line in site.reputation.iter().flat_map(|r| r.lines()) {
            out.push_str(&format!("  {}\n", printable(&line)));
        }
    }
    out.push_str(&last_day(report));
    out
}

/// Each site's and relay's last 24 hours, for `smarthostd status`.
pub(super) fn last_day(report: &StatusReport) -> String {
    let mut rows = Vec::new();
    for site in &report.sites {
        rows.push((site.name.clone(), site.last_24h.as_ref()));
        for host in &site.hosts {
            rows.push((format!("  {}", host.name), host.last_24h.as_ref()));
        }
    }
    if rows.iter().all(|(_, h)| h.is_none()) {
        return String::new();
    }
    let width = rows
        .iter()
        .map(|(n, _)| printable(n).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("last 24 h (a site is up while its own relays lead its answer):\n");
    for (name, history) in rows {
        let figures = history.map_or("no history".into(), figures);
        out.push_str(&format!("  {:<width$}  {figures}\n", printable(&name)));
    }
    out
}

/// Share up, transitions, longest outage.
fn figures(h: &History) -> String {
    let share = h
        .up_share
        .map_or("no data".to_string(), |s| format!("{:.2} % up", s * 100.0));
    let plural = if h.transitions == 1 { "" } else { "s" };
    let mut text = format!("{share:<12}  {:>3} transition{plural}", h.transitions);
    if let Some(start) = h.longest_outage_start {
        text.push_str(&format!(
            "  longest outage {} from {}",
            humantime::format_duration(
                Duration::from_secs(h.longest_outage_seconds.round() as u64)
            ),
            humantime::format_rfc3339_seconds(start)
        ));
    }
    text
}

/// Drains (`Some(period)`, where an empty period lasts until undrained) or undrains a host.
pub(super) fn drain(
    args: &ClientArgs,
    target: &str,
    drain: Option<Option<&str>>,
) -> Result<(), CliError> {
    let (site, host) = target
        .split_once('/')
        .filter(|(s, h)| !s.is_empty() && !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| CliError::Usage(format!("{target:?}: give the host as SITE/HOST")))?;
    let (site, host) = (path_segment(site), path_segment(host));
    let path = match drain {
        None => format!("/hosts/{site}/{host}/undrain"),
        Some(None) => format!("/hosts/{site}/{host}/drain"),
        Some(Some(period)) => {
            humantime::parse_duration(period).map_err(|e| {
                CliError::Usage(format!(
                    "--for {period:?}: {e} (a duration such as 30m or 2h)"
                ))
            })?;
            format!("/hosts/{site}/{host}/drain{}", query(&[("for", period)]))
        }
    };
    let message = Admin::new(args)?.post(&path)?;
    println!("{message}");
    Ok(())
}

/// Lists every drain the server keeps, also of hosts no longer configured.
pub(super) fn drains(args: &ClientArgs) -> Result<(), CliError> {
    let list: Vec<DrainStatus> =
        serde_json::from_str(&Admin::new(args)?.get("/drains")?).map_err(|e| e.to_string())?;
    if list.is_empty() {
        println!("no host is drained");
        return Ok(());
    }
    for d in list {
        let mut line = printable(&d.key);
        if let Some(until) = d.until {
            line.push_str(&format!("  until {}", printable(&until)));
        }
        if !d.configured {
            line.push_str("  (no longer configured: `smarthostd undrain` clears it)");
        }
        println!("{line}");
    }
    Ok(())
}

pub(super) fn reload(args: &ClientArgs) -> Result<(), CliError> {
    let message = Admin::new(args)?.post("/reload")?;
    println!("{message}");
    Ok(())
}
