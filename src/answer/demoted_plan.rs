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

use super::demotions::Demotions;
use super::health_view::HealthView;
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
#[path = "demoted_plan_tests.rs"]
mod tests;
