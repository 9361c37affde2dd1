//! Every instance side by side (`/status?cluster=1`, `smarthostd status --cluster`, the status
//! page): each instance's state and config fingerprint, per relay each instance's verdict and
//! reason, per site the answer each instance serves. Peers are shown as of their last poll
//! (at most one probe interval old); a peer that is not up shows no verdicts, only why.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::wire::View;
use super::{Cluster, Link};
use crate::answer::Mode;
use crate::health::status::StatusReport;

/// `GET /status?cluster=1`: the status report with the cluster part beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This instance's status report, as `GET /status` gives it.
    #[serde(flatten)]
    pub status: StatusReport,
    /// Every instance side by side; absent from an instance without `[cluster]`.
    #[serde(default)]
    pub cluster: Option<ClusterReport>,
}

/// The cluster part of the status report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterReport {
    /// Every instance, this one first, then the peers in config order; the columns of `relays`
    /// and `sites`.
    pub instances: Vec<InstanceStatus>,
    /// Every relay, with each instance's verdict.
    pub relays: Vec<RelayRow>,
    /// Every site, with the answer each instance serves.
    pub sites: Vec<SiteRow>,
}

/// One instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// This instance's name, or a peer's address as `cluster.peers` lists it.
    pub name: String,
    /// `this`, `up`, `unreachable`, `refused` (the tokens differ) or `unknown` (not asked yet).
    pub state: String,
    /// Why it is unreachable or refused.
    #[serde(default)]
    pub problem: Option<String>,
    /// Seconds it has been in this state (a peer).
    #[serde(default)]
    pub for_seconds: Option<f64>,
    /// Seconds since its view was fetched (a peer).
    #[serde(default)]
    pub view_age_seconds: Option<f64>,
    /// The fingerprint of its config and zone (SHA-256, hex).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Its fingerprint is not this instance's: its config or zone file differs.
    pub config_differs: bool,
}

/// One relay: each instance's verdict, in the order of `instances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayRow {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
    /// Two instances' verdicts differ (verdicts not yet made aside).
    pub disagree: bool,
    /// Each instance's verdict; `None` where it has none to show.
    pub views: Vec<Option<Verdict>>,
}

/// One instance's verdict on a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `up`, `down`, `unknown` or `drained`.
    pub verdict: String,
    /// Why it is down, or how long it is drained.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One site: the answer each instance serves, in the order of `instances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteRow {
    /// The site's name.
    pub site: String,
    /// Two instances serve different answers.
    pub differ: bool,
    /// Each instance's answer; `None` where it has none to show.
    pub answers: Vec<Option<SiteAnswer>>,
}

/// The answer one instance serves for a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteAnswer {
    /// Local hosts lead, remote only, or failsafe.
    pub mode: Mode,
    /// The MX records, `<preference> <exchange>`, in order.
    pub answer: Vec<String>,
}

impl Cluster {
    /// The cluster report, with this instance as `report` shows it.
    pub fn report(&self, report: &StatusReport) -> ClusterReport {
        let ours = self.own_view(report);
        let now = Instant::now();
        let mut instances = vec![InstanceStatus {
            name: self.me().to_string(),
            state: "this".into(),
            problem: None,
            for_seconds: None,
            view_age_seconds: Some(0.0),
            fingerprint: Some(ours.fingerprint.clone()),
            config_differs: false,
        }];
        let mut views: Vec<Option<&View>> = vec![Some(&ours)];
        let states = self.peer_states();
        let order = self.settings();
        let peers: Vec<_> = (order.peers.iter())
            .filter_map(|l| states.get(&l.addr).map(|s| (l.addr, s)))
            .collect();
        for (addr, state) in &peers {
            let (name, problem) = match &state.link {
                Link::Up => ("up", None),
                Link::Unknown => ("unknown", None),
                Link::Unreachable(why) => ("unreachable", Some(why.clone())),
                Link::Refused(why) => ("refused", Some(why.clone())),
            };
            let view = state.view.as_ref().filter(|_| state.link == Link::Up);
            instances.push(InstanceStatus {
                name: addr.to_string(),
                state: name.into(),
                problem,
                for_seconds: Some(now.duration_since(state.since).as_secs_f64()),
                view_age_seconds: view.map(|(_, at)| now.duration_since(*at).as_secs_f64()),
                fingerprint: view.map(|(v, _)| v.fingerprint.clone()),
                config_differs: view.is_some_and(|(v, _)| v.fingerprint != ours.fingerprint),
            });
            views.push(view.map(|(v, _)| &**v));
        }
        ClusterReport {
            instances,
            relays: relay_rows(&views),
            sites: site_rows(&views),
        }
    }
}

/// Every relay any view names, this instance's first, in order.
fn relay_rows(views: &[Option<&View>]) -> Vec<RelayRow> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for view in views.iter().flatten() {
        for r in &view.relays {
            if !keys.iter().any(|(s, h)| *s == r.site && *h == r.host) {
                keys.push((r.site.clone(), r.host.clone()));
            }
        }
    }
    keys.into_iter()
        .map(|(site, host)| {
            let cells: Vec<Option<Verdict>> = (views.iter())
                .map(|v| {
                    let r = (*v)?.relay(&site, &host)?;
                    Some(Verdict {
                        verdict: r.verdict.clone(),
                        reason: r.reason.clone(),
                    })
                })
                .collect();
            let made: Vec<&str> = (cells.iter().flatten())
                .map(|c| c.verdict.as_str())
                .filter(|v| *v != "unknown")
                .collect();
            RelayRow {
                disagree: made.windows(2).any(|w| w[0] != w[1]),
                site,
                host,
                views: cells,
            }
        })
        .collect()
}

/// Every site any view names, this instance's first, in order.
fn site_rows(views: &[Option<&View>]) -> Vec<SiteRow> {
    let mut names: Vec<String> = Vec::new();
    for view in views.iter().flatten() {
        for s in &view.sites {
            if !names.contains(&s.site) {
                names.push(s.site.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|site| {
            let answers: Vec<Option<SiteAnswer>> = (views.iter())
                .map(|v| {
                    let s = (*v)?.sites.iter().find(|s| s.site == site)?;
                    Some(SiteAnswer {
                        mode: s.mode,
                        answer: s.answer.clone(),
                    })
                })
                .collect();
            let shown: Vec<&SiteAnswer> = answers.iter().flatten().collect();
            SiteRow {
                differ: shown.windows(2).any(|w| w[0] != w[1]),
                site,
                answers,
            }
        })
        .collect()
}
