//! Disagreement between instances about a relay: this instance's verdict against each peer's
//! (`up`, `down`, `drained`; a verdict not yet made counts for nothing). Instances probe on
//! their own schedules, so they may differ for up to one probe interval plus a timeout after
//! any change; a disagreement is reported only once it has lasted longer than the bound it is
//! given (one probe interval plus two timeouts): then a relay is seen differently from
//! different places (a firewall, a route, a blocklist at the relay) or a drain did not reach an
//! instance. Pure: times are arguments.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::{RelayView, View};

/// A disagreement that began or ended being reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// It has lasted past the bound: report it.
    Began {
        /// The relay's site.
        site: String,
        /// The relay's name in its site.
        host: String,
        /// Every instance's verdict (and reason), this one first.
        detail: String,
    },
    /// A reported disagreement is over.
    Ended {
        /// The relay's site.
        site: String,
        /// The relay's name in its site.
        host: String,
        /// How long it was seen.
        lasted: Duration,
    },
}

#[derive(Debug)]
struct Open {
    since: Instant,
    reported: bool,
    peers: usize,
}

/// The disagreements seen, by `(site, host)`.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    open: BTreeMap<(String, String), Open>,
}

impl Tracker {
    /// Compares `ours` with the peers' views (each with the peer's name) at `now`; a
    /// disagreement seen for longer than `bound` is reported. Returns what began or ended being
    /// reported, and for every relay of `ours` how many peers disagree in a reported
    /// disagreement (0 otherwise).
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        bound: Duration,
        ours: &View,
        peers: &[(&str, &View)],
    ) -> (Vec<Change>, Vec<(String, String, usize)>) {
        let mut changes = Vec::new();
        let mut counts = Vec::with_capacity(ours.relays.len());
        let mut seen = Vec::new();
        for mine in &ours.relays {
            let key = (mine.site.clone(), mine.host.clone());
            let differing: Vec<(&str, &RelayView)> = if ours.ready {
                peers
                    .iter()
                    .filter(|(_, v)| v.ready)
                    .filter_map(|(name, v)| Some((*name, v.relay(&mine.site, &mine.host)?)))
                    .filter(|(_, theirs)| differ(mine, theirs))
                    .collect()
            } else {
                Vec::new()
            };
            if differing.is_empty() {
                counts.push((key.0, key.1, 0));
                continue;
            }
            seen.push(key.clone());
            let open = self.open.entry(key.clone()).or_insert(Open {
                since: now,
                reported: false,
                peers: 0,
            });
            open.peers = differing.len();
            if !open.reported && now.duration_since(open.since) > bound {
                open.reported = true;
                let mut parts = vec![format!("this instance ({}): {}", ours.instance, said(mine))];
                parts.extend(
                    differing
                        .iter()
                        .map(|(name, r)| format!("{name}: {}", said(r))),
                );
                changes.push(Change::Began {
                    site: key.0.clone(),
                    host: key.1.clone(),
                    detail: parts.join("; "),
                });
            }
            let count = if open.reported { open.peers } else { 0 };
            counts.push((key.0, key.1, count));
        }
        let over: Vec<(String, String)> = (self.open.keys())
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for key in over {
            if let Some(open) = self.open.remove(&key)
                && open.reported
            {
                changes.push(Change::Ended {
                    site: key.0,
                    host: key.1,
                    lasted: now.duration_since(open.since),
                });
            }
        }
        (changes, counts)
    }
}

/// Whether two verdicts on one relay disagree: both made, and not the same.
fn differ(a: &RelayView, b: &RelayView) -> bool {
    a.verdict != "unknown" && b.verdict != "unknown" && a.verdict != b.verdict
}

fn said(r: &RelayView) -> String {
    match &r.reason {
        Some(reason) => format!("{} ({reason})", r.verdict),
        None => r.verdict.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, verdict: &str) -> View {
        View {
            instance: name.into(),
            fingerprint: String::new(),
            drains: String::new(),
            reload: None,
            ready: true,
            relays: vec![RelayView {
                site: "oxford".into(),
                host: "mail1".into(),
                verdict: verdict.into(),
                reason: (verdict == "down").then(|| "connection reset".to_string()),
            }],
            sites: Vec::new(),
        }
    }

    const BOUND: Duration = Duration::from_secs(4);

    #[test]
    fn a_disagreement_is_reported_once_it_outlasts_the_bound_and_its_end_too() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        let (ours, up) = (view("a", "down"), view("b", "up"));
        let peers = [("b", &up)];
        let (c, n) = t.observe(t0, BOUND, &ours, &peers);
        assert!(c.is_empty());
        assert_eq!(n, [("oxford".into(), "mail1".into(), 0)]);
        let (c, _) = t.observe(t0 + BOUND, BOUND, &ours, &peers);
        assert!(c.is_empty(), "not longer than the bound yet");
        let (c, n) = t.observe(t0 + BOUND + Duration::from_millis(1), BOUND, &ours, &peers);
        assert_eq!(n[0].2, 1);
        match &c[..] {
            [Change::Began { detail, .. }] => {
                assert_eq!(detail, "this instance (a): down (connection reset); b: up")
            }
            other => panic!("{other:?}"),
        }
        let (c, _) = t.observe(t0 + 2 * BOUND, BOUND, &ours, &peers);
        assert!(c.is_empty(), "reported once");
        let agree = view("b", "down");
        let (c, n) = t.observe(t0 + 3 * BOUND, BOUND, &ours, &[("b", &agree)]);
        assert_eq!(n[0].2, 0);
        assert_eq!(
            c,
            [Change::Ended {
                site: "oxford".into(),
                host: "mail1".into(),
                lasted: 3 * BOUND
            }]
        );
    }

    #[test]
    fn a_short_disagreement_is_never_reported_and_unknown_verdicts_count_for_nothing() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        let (ours, up, unknown) = (view("a", "down"), view("b", "up"), view("c", "unknown"));
        t.observe(t0, BOUND, &ours, &[("b", &up)]);
        let (c, _) = t.observe(t0 + BOUND / 2, BOUND, &ours, &[("b", &ours)]);
        assert!(c.is_empty());
        let (c, n) = t.observe(t0 + 3 * BOUND, BOUND, &ours, &[("c", &unknown)]);
        assert!(c.is_empty());
        assert_eq!(n[0].2, 0);
        // A new disagreement starts its own clock.
        let (c, _) = t.observe(t0 + 4 * BOUND, BOUND, &ours, &[("b", &up)]);
        assert!(c.is_empty());
    }

    #[test]
    fn drained_against_served_is_a_disagreement_and_so_is_each_peer_that_differs() {
        let t0 = Instant::now();
        let mut t = Tracker::default();
        let (ours, drained, also) = (view("a", "up"), view("b", "drained"), view("c", "drained"));
        let peers = [("b", &drained), ("c", &also)];
        t.observe(t0, BOUND, &ours, &peers);
        let (c, n) = t.observe(t0 + 2 * BOUND, BOUND, &ours, &peers);
        assert_eq!(c.len(), 1);
        assert_eq!(n[0].2, 2);
    }
}
