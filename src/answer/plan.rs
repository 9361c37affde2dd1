//! Which hosts an MX answer names, at which preference: the MX trick, made live.
//!
//! Pure functions of topology and health; the snapshot turns their plans into records.

use super::health_view::HealthView;
use crate::topology::{HostId, SiteId, Topology, View};

/// One MX record to be: an exchange and its preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// The MX preference: MTAs try lower ones first.
    pub preference: u16,
    /// The host named as the exchange.
    pub host: HostId,
}

/// Why an answer names the hosts it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Local hosts are healthy: they lead, fallbacks follow.
    Normal,
    /// No local host is healthy: only the healthy remote hosts are named.
    RemoteOnly,
    /// Nothing in this answer's set is healthy: every configured host is named, so that senders
    /// queue and retry rather than bounce.
    Failsafe,
}

/// The MX answer of one site (or of the "all" view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPlan {
    /// The MX records, in the order they are written: lowest preference first.
    pub exchanges: Vec<Exchange>,
    /// Why these hosts: local ones lead, remote ones only, or the failsafe.
    pub mode: Mode,
    /// A host in this answer's configured set is down or in transition: serve the degraded TTL.
    pub degraded: bool,
    /// Demoted sites (blocklisted egress) whose place in this answer moved; empty when health
    /// alone shaped it, as every plan made here is.
    pub shaped_by: Vec<SiteId>,
}

/// The answer for a view of a shared name.
pub(crate) fn view_plan(topology: &Topology, health: &HealthView, view: View) -> MxPlan {
    match view {
        View::Site(site) => site_plan(topology, health, site),
        View::All => all_plan(topology, health),
    }
}

/// `<site>.<origin> MX`: healthy local hosts at the local preference, healthy fallback hosts at
/// theirs; the whole configured set when none of them is healthy.
pub(crate) fn site_plan(topology: &Topology, health: &HealthView, site: SiteId) -> MxPlan {
    let local_pref = topology.answer.local_preference;
    let s = &topology.sites[site];
    let configured = || {
        let local = s.hosts.iter().map(move |&h| (local_pref, h));
        let remote = s.fallback.iter().flat_map(move |&(fallback, pref)| {
            topology.sites[fallback]
                .hosts
                .iter()
                .map(move |&h| (pref, h))
        });
        local.chain(remote)
    };
    plan(
        health,
        configured,
        |local_healthy| {
            if local_healthy {
                Mode::Normal
            } else {
                Mode::RemoteOnly
            }
        },
        |pref| pref == local_pref,
    )
}

/// The "all" view: every healthy host of every site at the local preference.
pub(crate) fn all_plan(topology: &Topology, health: &HealthView) -> MxPlan {
    let pref = topology.answer.local_preference;
    let configured = || (0..topology.hosts.len()).map(move |h| (pref, h));
    plan(health, configured, |_| Mode::Normal, |_| true)
}

/// `plan`, an answer of `site`, with its first fallback site's hosts raised to the local
/// preference: the answer a `warm_share` of queries gets so that standby relays keep sending.
/// `None` when that changes nothing (no fallback, or the local hosts are down anyway).
pub(crate) fn raise_warm(topology: &Topology, mut plan: MxPlan, site: SiteId) -> Option<MxPlan> {
    let (warm_site, _) = *topology.sites[site].fallback.first()?;
    if plan.mode != Mode::Normal {
        return None;
    }
    let local_pref = topology.answer.local_preference;
    let mut changed = false;
    for ex in &mut plan.exchanges {
        if topology.hosts[ex.host].site == warm_site && ex.preference != local_pref {
            ex.preference = local_pref;
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    // Keep the records grouped by preference, as every other answer is.
    plan.exchanges.sort_by_key(|e| e.preference);
    Some(plan)
}

fn plan<I>(
    health: &HealthView,
    configured: impl Fn() -> I,
    mode_when_served: impl Fn(bool) -> Mode,
    is_local: impl Fn(u16) -> bool,
) -> MxPlan
where
    I: Iterator<Item = (u16, HostId)>,
{
    let degraded = configured().any(|(_, h)| health.host(h).degraded());
    let healthy: Vec<Exchange> = configured()
        .filter(|&(_, h)| health.host(h).healthy())
        .map(|(preference, host)| Exchange { preference, host })
        .collect();
    if healthy.is_empty() {
        return MxPlan {
            exchanges: configured()
                .filter(|&(_, h)| !health.host(h).addresses.is_empty())
                .map(|(preference, host)| Exchange { preference, host })
                .collect(),
            mode: Mode::Failsafe,
            degraded,
            shaped_by: Vec::new(),
        };
    }
    let local_healthy = healthy.iter().any(|e| is_local(e.preference));
    MxPlan {
        exchanges: healthy,
        mode: mode_when_served(local_healthy),
        degraded,
        shaped_by: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::health_view::State;
    use crate::test_support::{THREE_SITES, config_from, p, prefs, topology};

    #[test]
    fn healthy_local_hosts_lead_and_every_other_site_follows_at_20() {
        let topo = topology(&config_from(THREE_SITES));
        let health = HealthView::all_up(&topo);
        let plan = site_plan(&topo, &health, 0);
        assert_eq!(plan.mode, Mode::Normal);
        assert!(!plan.degraded);
        assert_eq!(
            prefs(&plan, &topo),
            vec![
                p(10, "oxford/mail1"),
                p(10, "oxford/mail2"),
                p(20, "cambridge/mail1"),
                p(20, "london/mail1")
            ]
        );
    }

    #[test]
    fn a_down_local_host_leaves_and_marks_the_answer_degraded() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        health.set_host(0, State::Down);
        let plan = site_plan(&topo, &health, 0);
        assert_eq!(plan.mode, Mode::Normal);
        assert!(plan.degraded);
        assert_eq!(plan.exchanges.len(), 3);
        assert_eq!(prefs(&plan, &topo)[0], p(10, "oxford/mail2"));
    }

    #[test]
    fn a_host_with_one_live_address_stays() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        health.set_address(1, "127.0.1.12".parse().unwrap(), State::Down);
        let plan = site_plan(&topo, &health, 0);
        assert_eq!(prefs(&plan, &topo)[1], p(10, "oxford/mail2"));
        let served: Vec<_> = health.host(1).served_addresses().collect();
        assert_eq!(served, vec!["::1".parse::<std::net::IpAddr>().unwrap()]);
    }

    #[test]
    fn with_every_local_host_down_only_remote_hosts_are_served() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        health.set_host(0, State::Down);
        health.set_host(1, State::Down);
        let plan = site_plan(&topo, &health, 0);
        assert_eq!(plan.mode, Mode::RemoteOnly);
        assert_eq!(
            prefs(&plan, &topo),
            vec![p(20, "cambridge/mail1"), p(20, "london/mail1")]
        );
    }

    #[test]
    fn with_everything_down_the_full_configured_set_is_served() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        for h in 0..topo.hosts.len() {
            health.set_host(h, State::Down);
        }
        let plan = site_plan(&topo, &health, 0);
        assert_eq!(plan.mode, Mode::Failsafe);
        assert_eq!(plan.exchanges.len(), 4);
        assert_eq!(prefs(&plan, &topo)[0], p(10, "oxford/mail1"));
        // A down host's A record still lists its addresses: a named exchange must resolve.
        assert_eq!(health.host(0).served_addresses().count(), 1);
    }

    #[test]
    fn ordered_fallback_ranks_sites_and_leaves_the_rest_out() {
        let text = THREE_SITES.replace(
            "[sites.cambridge]",
            "fallback = [\"london\"]\n[sites.cambridge]",
        );
        let topo = topology(&config_from(&text));
        let health = HealthView::all_up(&topo);
        assert_eq!(
            prefs(&site_plan(&topo, &health, 0), &topo),
            vec![
                p(10, "oxford/mail1"),
                p(10, "oxford/mail2"),
                p(20, "london/mail1")
            ]
        );
        let text = THREE_SITES.replace(
            "[sites.cambridge]",
            "fallback = [\"london\", \"cambridge\"]\n[sites.cambridge]",
        );
        let topo = topology(&config_from(&text));
        assert_eq!(
            prefs(&site_plan(&topo, &health, 0), &topo)[2..],
            [p(20, "london/mail1"), p(30, "cambridge/mail1")]
        );
    }

    #[test]
    fn a_drained_host_leaves_like_a_down_one_but_the_failsafe_keeps_it() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        health.hosts[0].drained = true;
        let plan = site_plan(&topo, &health, 0);
        assert!(!plan.degraded, "a drain is intent, not trouble");
        assert_eq!(prefs(&plan, &topo)[0], p(10, "oxford/mail2"));
        for h in 0..topo.hosts.len() {
            health.hosts[h].drained = true;
        }
        assert_eq!(site_plan(&topo, &health, 0).mode, Mode::Failsafe);
    }

    #[test]
    fn the_all_view_lists_every_healthy_host_at_one_preference() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        health.set_host(2, State::Down);
        let plan = all_plan(&topo, &health);
        assert!(plan.exchanges.iter().all(|e| e.preference == 10));
        assert_eq!(plan.exchanges.len(), 3);
    }

    #[test]
    fn raising_warm_lifts_the_first_fallback_site() {
        let text = THREE_SITES.replace(
            "[sites.cambridge]",
            "fallback = [\"cambridge\", \"london\"]\n[sites.cambridge]",
        );
        let topo = topology(&config_from(&text));
        let mut health = HealthView::all_up(&topo);
        let warm = raise_warm(&topo, site_plan(&topo, &health, 0), 0).unwrap();
        assert_eq!(
            prefs(&warm, &topo),
            vec![
                p(10, "oxford/mail1"),
                p(10, "oxford/mail2"),
                p(10, "cambridge/mail1"),
                p(30, "london/mail1")
            ]
        );
        health.set_host(0, State::Down);
        health.set_host(1, State::Down);
        assert_eq!(raise_warm(&topo, site_plan(&topo, &health, 0), 0), None);
    }
}
