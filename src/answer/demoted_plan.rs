//! The MX plan under demotion: the answers while a site's egress address is on a blocklist and
//! `reputation.action = "demote"`.
//!
//! A receiver that consults the list refuses or junks what the listed site's relays send, so
//! other sites should not hand them their mail: in every other answer a demoted site's relays
//! move behind every clean site. The demoted site's own name leads with its first healthy clean
//! fallback site, at the local preference, and keeps its own relays right after it: they are
//! still the nearest way out, and most receivers do not consult any one list.
//!
//! Only preferences move. No relay leaves an answer (the health-only plan decides who is named),
//! the failsafe stays exactly as it is, and with no clean site to prefer nothing changes. The
//! set of demoted sites ([`Demotions`]) is an input of the build, like the health view.

use super::HealthView;
use super::demotions::Demotions;
use super::plan::{Exchange, Mode, MxPlan, raise_warm, view_plan};
use crate::topology::{SiteId, Topology, View};

/// The MX answer of `view`: the health-only plan, with demoted sites' relays moved.
pub(crate) fn plan(
    topology: &Topology,
    health: &HealthView,
    demotions: &Demotions,
    view: View,
) -> MxPlan {
    let plan = view_plan(topology, health, view);
    if demotions.is_empty() || plan.mode == Mode::Failsafe {
        return plan;
    }
    let configured = tiers(topology, view);
    let reordered = reorder(&configured, view, demotions, |s| {
        topology.sites[s]
            .hosts
            .iter()
            .any(|&h| health.host(h).healthy())
    });
    let before = preferences(topology, &configured);
    let after = preferences(topology, &reordered);
    let mut exchanges = plan.exchanges.clone();
    for ex in &mut exchanges {
        if let Some(pref) = after[topology.hosts[ex.host].site] {
            ex.preference = pref;
        }
    }
    exchanges.sort_by_key(|e| e.preference);
    if same_shape(&exchanges, &plan.exchanges) {
        return plan;
    }
    let shaped_by = (0..topology.sites.len())
        .filter(|&s| demotions.is_demoted(s) && before[s] != after[s])
        .collect();
    MxPlan {
        exchanges,
        shaped_by,
        ..plan
    }
}

/// The warm-standby variant of `site`'s answer under demotions: none when the site itself or
/// the site it keeps warm is demoted (a listed relay is not to be kept sending).
pub(crate) fn warm_plan(
    topology: &Topology,
    health: &HealthView,
    demotions: &Demotions,
    site: SiteId,
) -> Option<MxPlan> {
    let (warm_site, _) = *topology.sites[site].fallback.first()?;
    if demotions.is_demoted(site) || demotions.is_demoted(warm_site) {
        return None;
    }
    raise_warm(
        topology,
        plan(topology, health, demotions, View::Site(site)),
        site,
    )
}

/// The sites of `view`'s configured answer in groups of equal preference, first group first:
/// the site itself, then its fallback tiers; for the "all" view, every site in one group.
fn tiers(topology: &Topology, view: View) -> Vec<Vec<SiteId>> {
    let View::Site(site) = view else {
        return vec![(0..topology.sites.len()).collect()];
    };
    let mut tiers = vec![vec![site]];
    let mut last = None;
    for &(fallback, pref) in &topology.sites[site].fallback {
        match tiers.last_mut() {
            Some(tier) if last == Some(pref) => tier.push(fallback),
            _ => tiers.push(vec![fallback]),
        }
        last = Some(pref);
    }
    tiers
}

/// `tiers` with demoted sites behind every clean one, keeping each side's order; a demoted own
/// site behind its first healthy clean fallback.
fn reorder(
    tiers: &[Vec<SiteId>],
    view: View,
    demotions: &Demotions,
    healthy: impl Fn(SiteId) -> bool,
) -> Vec<Vec<SiteId>> {
    let (own, rest) = match view {
        View::Site(site) => (Some(site), &tiers[1..]),
        View::All => (None, tiers),
    };
    let part = |demoted: bool| -> Vec<Vec<SiteId>> {
        rest.iter()
            .map(|t| {
                t.iter()
                    .copied()
                    .filter(|&s| demotions.is_demoted(s) == demoted)
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect()
    };
    let mut clean = part(false);
    let listed = part(true);
    let mut out = Vec::with_capacity(tiers.len() + 2);
    if let Some(site) = own {
        let lead = demotions
            .is_demoted(site)
            .then(|| clean.iter().flatten().copied().find(|&s| healthy(s)))
            .flatten();
        if let Some(lead) = lead {
            for tier in &mut clean {
                tier.retain(|&s| s != lead);
            }
            clean.retain(|t| !t.is_empty());
            out.push(vec![lead]);
        }
        out.push(vec![site]);
    }
    out.extend(clean);
    out.extend(listed);
    out
}

/// The preference of each site in `tiers` (by [`SiteId`]): the local one for the first tier,
/// then the fallback preference, one step more per tier.
fn preferences(topology: &Topology, tiers: &[Vec<SiteId>]) -> Vec<Option<u16>> {
    let a = &topology.answer;
    let mut prefs = vec![None; topology.sites.len()];
    for (i, tier) in tiers.iter().enumerate() {
        let pref = match i {
            0 => a.local_preference,
            i => {
                let steps = u16::try_from(i - 1).unwrap_or(u16::MAX);
                a.fallback_preference
                    .saturating_add(a.fallback_step.saturating_mul(steps))
            }
        };
        for &s in tier {
            prefs[s] = Some(pref);
        }
    }
    prefs
}

/// Whether two answers name the same hosts in the same order and groups: then only the
/// numbers differ, and a sender tries them just the same.
fn same_shape(a: &[Exchange], b: &[Exchange]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.host == y.host)
        && a.windows(2).zip(b.windows(2)).all(|(x, y)| {
            (x[0].preference == x[1].preference) == (y[0].preference == y[1].preference)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::State;
    use crate::test_support::{config_from, topology};

    const THREE_SITES: &str = r#"
        [zone]
        origin = "smarthost.internal"
        file = "z.zone"
        [sites.oxford]
        hosts = [ { name = "mail1", addresses = ["127.0.1.11"] },
                  { name = "mail2", addresses = ["127.0.1.12"] } ]
        [sites.cambridge]
        hosts = [ { name = "mail1", addresses = ["127.0.1.21"] } ]
        [sites.london]
        hosts = [ { name = "mail1", addresses = ["127.0.1.31"] } ]
    "#;
    const OXFORD: SiteId = 0;
    const CAMBRIDGE: SiteId = 1;
    const LONDON: SiteId = 2;

    fn prefs(plan: &MxPlan, topo: &Topology) -> Vec<(u16, String)> {
        plan.exchanges
            .iter()
            .map(|e| (e.preference, topo.hosts[e.host].key(topo)))
            .collect()
    }

    fn p(pref: u16, key: &str) -> (u16, String) {
        (pref, key.to_string())
    }

    fn demoted(sites: &[SiteId]) -> Demotions {
        let mut d = Demotions::none();
        for &s in sites {
            d.demote(s, "198.51.100.7 listed on zen");
        }
        d
    }

    fn with_fallback(list: &str) -> Topology {
        let text = THREE_SITES.replace(
            "[sites.cambridge]",
            &format!("fallback = {list}\n[sites.cambridge]"),
        );
        topology(&config_from(&text))
    }

    #[test]
    fn without_demotions_the_answer_is_health_alone() {
        let topo = topology(&config_from(THREE_SITES));
        let health = HealthView::all_up(&topo);
        for view in topo.views() {
            assert_eq!(
                plan(&topo, &health, &Demotions::none(), view),
                view_plan(&topo, &health, view)
            );
        }
    }

    #[test]
    fn another_sites_listed_relays_move_behind_every_clean_site() {
        let topo = topology(&config_from(THREE_SITES));
        let health = HealthView::all_up(&topo);
        let shaped = plan(&topo, &health, &demoted(&[CAMBRIDGE]), View::Site(OXFORD));
        assert_eq!(
            prefs(&shaped, &topo),
            vec![
                p(10, "oxford/mail1"),
                p(10, "oxford/mail2"),
                p(20, "london/mail1"),
                p(30, "cambridge/mail1"),
            ]
        );
        assert_eq!(shaped.shaped_by, vec![CAMBRIDGE]);
        assert_eq!(shaped.mode, Mode::Normal);
        // In order: the clean site that came after it takes its place.
        let topo = with_fallback(r#"["cambridge", "london"]"#);
        let shaped = plan(&topo, &health, &demoted(&[CAMBRIDGE]), View::Site(OXFORD));
        assert_eq!(
            prefs(&shaped, &topo)[2..],
            [p(20, "london/mail1"), p(30, "cambridge/mail1")]
        );
    }

    #[test]
    fn a_listed_site_leads_with_its_first_healthy_clean_fallback() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        let d = demoted(&[OXFORD]);
        let shaped = plan(&topo, &health, &d, View::Site(OXFORD));
        assert_eq!(
            prefs(&shaped, &topo),
            vec![
                p(10, "cambridge/mail1"),
                p(20, "oxford/mail1"),
                p(20, "oxford/mail2"),
                p(30, "london/mail1"),
            ]
        );
        assert_eq!(shaped.shaped_by, vec![OXFORD]);
        assert_eq!(shaped.mode, Mode::Normal, "the mode is health's");
        // Cambridge down (or drained): the next clean site with a healthy relay leads.
        health.set_host(2, State::Down);
        let shaped = plan(&topo, &health, &d, View::Site(OXFORD));
        assert_eq!(prefs(&shaped, &topo)[0], p(10, "london/mail1"));
        health.set_host(2, State::Up);
        health.hosts[2].drained = true;
        let shaped = plan(&topo, &health, &d, View::Site(OXFORD));
        assert_eq!(prefs(&shaped, &topo)[0], p(10, "london/mail1"));
        // A listed fallback is never the one to lead.
        let health = HealthView::all_up(&topo);
        let shaped = plan(
            &topo,
            &health,
            &demoted(&[OXFORD, CAMBRIDGE]),
            View::Site(OXFORD),
        );
        assert_eq!(
            prefs(&shaped, &topo),
            vec![
                p(10, "london/mail1"),
                p(20, "oxford/mail1"),
                p(20, "oxford/mail2"),
                p(30, "cambridge/mail1"),
            ]
        );
        assert_eq!(shaped.shaped_by, vec![OXFORD, CAMBRIDGE]);
    }

    #[test]
    fn with_no_clean_site_to_prefer_nothing_changes() {
        let topo = topology(&config_from(THREE_SITES));
        let mut health = HealthView::all_up(&topo);
        let every = demoted(&[OXFORD, CAMBRIDGE, LONDON]);
        for view in topo.views() {
            assert_eq!(
                plan(&topo, &health, &every, view),
                view_plan(&topo, &health, view)
            );
        }
        // Oxford listed, every clean fallback down: its own relays still lead.
        health.set_host(2, State::Down);
        health.set_host(3, State::Down);
        let d = demoted(&[OXFORD]);
        assert_eq!(
            plan(&topo, &health, &d, View::Site(OXFORD)),
            view_plan(&topo, &health, View::Site(OXFORD))
        );
        // A listed site whose relays are all down is not in the answer to move.
        let health = {
            let mut h = HealthView::all_up(&topo);
            h.set_host(2, State::Down);
            h
        };
        let shaped = plan(&topo, &health, &demoted(&[CAMBRIDGE]), View::Site(OXFORD));
        assert!(shaped.shaped_by.is_empty());
        assert_eq!(shaped, view_plan(&topo, &health, View::Site(OXFORD)));
    }

    #[test]
    fn the_failsafe_and_the_set_of_relays_are_never_touched() {
        let topo = topology(&config_from(THREE_SITES));
        // Every combination of demoted sites and of hosts up or down.
        for mask in 0u32..(1 << 3) {
            let sites: Vec<SiteId> = (0..3).filter(|s| mask & (1 << s) != 0).collect();
            let d = demoted(&sites);
            for up in 0u32..(1 << topo.hosts.len()) {
                let mut health = HealthView::all_up(&topo);
                for h in 0..topo.hosts.len() {
                    if up & (1 << h) == 0 {
                        health.set_host(h, State::Down);
                    }
                }
                for view in topo.views() {
                    let alone = view_plan(&topo, &health, view);
                    let shaped = plan(&topo, &health, &d, view);
                    let hosts = |p: &MxPlan| {
                        let mut v: Vec<_> = p.exchanges.iter().map(|e| e.host).collect();
                        v.sort_unstable();
                        v
                    };
                    assert_eq!(hosts(&shaped), hosts(&alone), "{sites:?} {up:b} {view:?}");
                    assert_eq!(shaped.mode, alone.mode);
                    if alone.mode == Mode::Failsafe {
                        assert_eq!(shaped, alone, "the failsafe is never reshaped");
                    }
                    let grouped = shaped
                        .exchanges
                        .windows(2)
                        .all(|w| w[0].preference <= w[1].preference);
                    assert!(grouped, "records stay grouped by preference");
                }
            }
        }
    }

    #[test]
    fn the_all_view_puts_listed_sites_at_the_fallback_preference() {
        let topo = topology(&config_from(THREE_SITES));
        let health = HealthView::all_up(&topo);
        let shaped = plan(&topo, &health, &demoted(&[OXFORD]), View::All);
        assert_eq!(
            prefs(&shaped, &topo),
            vec![
                p(10, "cambridge/mail1"),
                p(10, "london/mail1"),
                p(20, "oxford/mail1"),
                p(20, "oxford/mail2"),
            ]
        );
    }

    #[test]
    fn no_warm_variant_keeps_a_listed_relay_sending() {
        let topo = with_fallback(r#"["cambridge", "london"]"#);
        let health = HealthView::all_up(&topo);
        assert_eq!(
            warm_plan(&topo, &health, &demoted(&[CAMBRIDGE]), OXFORD),
            None
        );
        assert_eq!(warm_plan(&topo, &health, &demoted(&[OXFORD]), OXFORD), None);
        let topo = with_fallback(r#"["london", "cambridge"]"#);
        let warm = warm_plan(&topo, &health, &demoted(&[CAMBRIDGE]), OXFORD).unwrap();
        assert_eq!(
            prefs(&warm, &topo),
            vec![
                p(10, "oxford/mail1"),
                p(10, "oxford/mail2"),
                p(10, "london/mail1"),
                p(30, "cambridge/mail1"),
            ]
        );
    }
}
