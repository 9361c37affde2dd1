//! The plan under demotion, site by site and view by view.

use super::*;
use crate::answer::health_view::State;
use crate::test_support::{THREE_SITES, config_from, p, prefs, topology};

const OXFORD: SiteId = 0;
const CAMBRIDGE: SiteId = 1;
const LONDON: SiteId = 2;

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
