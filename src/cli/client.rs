//! `status`, `drain`, `undrain`, `reload`: clients of the running server's admin API.

use std::net::SocketAddr;
use std::time::Duration;

use super::ClientArgs;
use crate::admin::ActionResult;
use crate::config::{self, DEFAULT_ADMIN};
use crate::health::status::StatusReport;

/// Bound on one admin request; a reload waits for the new config to be checked.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Admin {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Admin {
    fn new(args: &ClientArgs) -> Self {
        let config = config::load(&args.config).ok();
        let addr: SocketAddr = args
            .admin
            .or_else(|| config.as_ref().and_then(|c| c.server.admin))
            .unwrap_or_else(|| DEFAULT_ADMIN.parse().expect("valid default"));
        let token = args
            .token
            .clone()
            .or_else(|| config.as_ref().and_then(|c| c.server.admin_token.clone()));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Self {
            base: format!("http://{addr}"),
            token,
            agent,
        }
    }

    fn get(&self, path: &str) -> Result<String, String> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: {} {}", response.status(), body.trim()));
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
            .map_err(|_| format!("{url}: {} {}", response.status(), body.trim()))?;
        if result.ok {
            Ok(result.message)
        } else {
            Err(result.message)
        }
    }
}

pub fn status(args: &ClientArgs) -> Result<(), String> {
    let admin = Admin::new(args);
    let report: StatusReport =
        serde_json::from_str(&admin.get("/status")?).map_err(|e| e.to_string())?;
    print!("{}", status_table(&report));
    Ok(())
}

/// The status report as a table for a terminal.
pub fn status_table(report: &StatusReport) -> String {
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
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "generation {} · serial {}\n",
        report.generation, report.serial
    ));
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
    }
    out
}

pub fn drain(args: &ClientArgs, target: &str, drained: bool) -> Result<(), String> {
    let (site, host) = target
        .split_once('/')
        .filter(|(s, h)| !s.is_empty() && !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| format!("{target:?}: give the host as SITE/HOST"))?;
    let verb = if drained { "drain" } else { "undrain" };
    let message = Admin::new(args).post(&format!("/hosts/{site}/{host}/{verb}"))?;
    println!("{message}");
    Ok(())
}

pub fn reload(args: &ClientArgs) -> Result<(), String> {
    let message = Admin::new(args).post("/reload")?;
    println!("{message}");
    Ok(())
}
