//! `status`, `drain`, `undrain`, `reload`: clients of the running server's admin API (and the
//! connection `events` uses too).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ClientArgs;
use super::terminal::printable;
use crate::admin::ActionResult;
use crate::config;
use crate::events::history::History;
use crate::health::status::{DrainStatus, StatusReport};

/// Bound on one admin request; a reload waits for the new config to be checked.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Admin {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Admin {
    /// The admin API of the server `args` name: `--admin` and `--token` as given, the rest
    /// from the config. A config that was named (or, without `--admin`, the default one) must
    /// load: a command never goes to another server than the one meant.
    pub(super) fn new(args: &ClientArgs) -> Result<Self, String> {
        let path = match (&args.config, args.admin) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(PathBuf::from(super::DEFAULT_CONFIG)),
        };
        let config = match &path {
            Some(path) => Some(config::load(path).map_err(|e| {
                format!("config error: {e} (nothing was sent; give --config PATH, or --admin ADDR)")
            })?),
            None => None,
        };
        let addr: SocketAddr = match (args.admin, &config) {
            (Some(addr), _) => addr,
            (None, Some(c)) => c.server.admin.ok_or_else(|| {
                format!(
                    "{} has no admin listener (server.admin): nothing to talk to",
                    c.path.display()
                )
            })?,
            (None, None) => unreachable!("a config is loaded when --admin is not given"),
        };
        let token = args
            .token
            .clone()
            .or_else(|| config.as_ref().and_then(|c| c.server.admin_token.clone()));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(Self {
            base: format!("http://{addr}"),
            token,
            agent,
        })
    }

    fn get(&self, path: &str) -> Result<String, String> {
        self.get_query(path, &[])
    }

    /// A GET with a query string, its values encoded.
    pub(super) fn get_query(&self, path: &str, query: &[(&str, &str)]) -> Result<String, String> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .query_pairs(query.iter().copied())
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "{url}: {} {}",
                response.status(),
                printable(body.trim())
            ));
        }
        Ok(body)
    }

    fn post(&self, path: &str) -> Result<String, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send_empty().map_err(|e| format!("{url}: {e}"))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let result: ActionResult = serde_json::from_str(&body)
            .map_err(|_| format!("{url}: {} {}", response.status(), printable(body.trim())))?;
        if result.ok && result.saved != Some(false) {
            Ok(printable(&result.message))
        } else {
            Err(printable(&result.message))
        }
    }
}

pub(super) fn status(args: &ClientArgs) -> Result<(), String> {
    let admin = Admin::new(args)?;
    let report: StatusReport =
        serde_json::from_str(&admin.get("/status")?).map_err(|e| e.to_string())?;
    print!("{}", status_table(&report));
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
) -> Result<(), String> {
    let (site, host) = target
        .split_once('/')
        .filter(|(s, h)| !s.is_empty() && !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| format!("{target:?}: give the host as SITE/HOST"))?;
    let path = match drain {
        None => format!("/hosts/{site}/{host}/undrain"),
        Some(None) => format!("/hosts/{site}/{host}/drain"),
        Some(Some(period)) => {
            humantime::parse_duration(period)
                .map_err(|e| format!("--for {period:?}: {e} (a duration such as 30m or 2h)"))?;
            format!("/hosts/{site}/{host}/drain?for={period}")
        }
    };
    let message = Admin::new(args)?.post(&path)?;
    println!("{message}");
    Ok(())
}

/// Lists every drain the server keeps, also of hosts no longer configured.
pub(super) fn drains(args: &ClientArgs) -> Result<(), String> {
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

pub(super) fn reload(args: &ClientArgs) -> Result<(), String> {
    let message = Admin::new(args)?.post("/reload")?;
    println!("{message}");
    Ok(())
}
