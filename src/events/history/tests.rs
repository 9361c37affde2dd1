//! The history of a relay and of a site, with explicit times.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

const A1: &str = "192.0.2.1";
const A2: &str = "192.0.2.2";

/// Seconds into the test's day.
fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
}

/// The day ending at `t(86_400)`: the window starts at `t(0)`.
fn day() -> Window {
    Window::last_day(t(86_400))
}

fn state(at: u64, host: &str, address: &str, from: &str, to: &str) -> Event {
    let a: IpAddr = address.parse().unwrap();
    Event::state("oxford", host, a, from, to, "probe").at(t(at))
}

fn relay_now(addresses: &[(&str, Phase)], drained: bool) -> RelayNow<'static> {
    RelayNow {
        site: "oxford",
        host: "mail1",
        addresses: addresses.iter().map(|(a, p)| (a.to_string(), *p)).collect(),
        drained,
    }
}

fn phases(h: &History) -> Vec<(Phase, f64)> {
    h.timeline.iter().map(|s| (s.state, s.seconds)).collect()
}

#[test]
fn a_relay_no_event_mentions_has_been_as_it_is_now_all_day() {
    let other = state(100, "mail2", A2, "up", "down");
    let h = relay(&[other], &relay_now(&[(A1, Phase::Up)], false), day());
    assert_eq!(phases(&h), [(Phase::Up, 86_400.0)]);
    assert_eq!(h.up_share, Some(1.0));
    assert_eq!((h.transitions, h.outages), (0, 0));
    assert_eq!(h.longest_outage_start, None);
    assert_eq!(h.since, t(0));
}

#[test]
fn a_flapping_relay_has_its_outages_counted_and_the_longest_found() {
    let events = [
        state(1_000, "mail1", A1, "up", "down"),
        state(1_600, "mail1", A1, "down", "up"),
        state(50_000, "mail1", A1, "up", "down"),
        state(52_000, "mail1", A1, "down", "up"),
        state(86_000, "mail1", A1, "up", "down"),
    ];
    let h = relay(&events, &relay_now(&[(A1, Phase::Down)], false), day());
    assert_eq!(
        phases(&h),
        [
            (Phase::Up, 1_000.0),
            (Phase::Down, 600.0),
            (Phase::Up, 48_400.0),
            (Phase::Down, 2_000.0),
            (Phase::Up, 34_000.0),
            (Phase::Down, 400.0),
        ]
    );
    assert_eq!(h.down_seconds, 3_000.0);
    assert_eq!(h.up_seconds, 83_400.0);
    assert_eq!(h.up_share, Some(83_400.0 / 86_400.0));
    assert_eq!((h.transitions, h.outages), (5, 3));
    assert_eq!(h.longest_outage_seconds, 2_000.0);
    assert_eq!(h.longest_outage_start, Some(t(50_000)));
}

#[test]
fn events_before_the_window_set_its_first_state_and_are_not_counted() {
    let events = [
        state(0, "mail1", A1, "up", "down").at(t(0) - Duration::from_secs(7_200)),
        state(3_600, "mail1", A1, "down", "up"),
    ];
    let h = relay(&events, &relay_now(&[(A1, Phase::Up)], false), day());
    assert_eq!(phases(&h), [(Phase::Down, 3_600.0), (Phase::Up, 82_800.0)]);
    assert_eq!((h.transitions, h.outages), (1, 1));
    assert_eq!(h.longest_outage_start, Some(t(0)), "clipped to the window");
}

#[test]
fn a_relay_is_up_while_any_address_is_and_down_only_when_none_is() {
    let events = [
        state(100, "mail1", A1, "up", "down"),
        state(200, "mail1", A2, "up", "down"),
        state(500, "mail1", A1, "down", "up"),
    ];
    let now = relay_now(&[(A1, Phase::Up), (A2, Phase::Down)], false);
    let h = relay(&events, &now, day());
    assert_eq!(
        phases(&h),
        [
            (Phase::Up, 200.0),
            (Phase::Down, 300.0),
            (Phase::Up, 85_900.0)
        ]
    );
}

#[test]
fn drained_time_is_neither_up_nor_down_whoever_ends_it() {
    let events = [
        Event::drain("oxford", "mail1", false, None, "by operator").at(t(1_000)),
        state(2_000, "mail1", A1, "up", "down"),
        state(3_000, "mail1", A1, "down", "up"),
        Event::undrain("oxford", "mail1", "maintenance window over").at(t(4_000)),
    ];
    let h = relay(&events, &relay_now(&[(A1, Phase::Up)], false), day());
    assert_eq!(
        phases(&h),
        [
            (Phase::Up, 1_000.0),
            (Phase::Drained, 3_000.0),
            (Phase::Up, 82_400.0)
        ]
    );
    assert_eq!(h.drained_seconds, 3_000.0);
    assert_eq!(
        h.up_share,
        Some(1.0),
        "a relay down while drained had no outage"
    );
    assert_eq!((h.transitions, h.outages), (2, 0));
}

#[test]
fn a_drain_older_than_the_history_is_taken_from_the_state_now() {
    let events = [state(1_000, "mail1", A1, "up", "down")];
    let h = relay(&events, &relay_now(&[(A1, Phase::Down)], true), day());
    assert_eq!(phases(&h), [(Phase::Drained, 86_400.0)]);
    assert_eq!(h.up_share, None, "nothing counted");
}

#[test]
fn nothing_is_known_while_smarthostd_is_stopped_or_before_its_first_start() {
    let events = [
        Event::start().at(t(10_000)),
        state(10_001, "mail1", A1, "unknown", "down"),
        Event::stop().at(t(20_000)),
        Event::start().at(t(30_000)),
        state(30_002, "mail1", A1, "unknown", "up"),
    ];
    let h = relay(&events, &relay_now(&[(A1, Phase::Up)], false), day());
    assert_eq!(
        phases(&h),
        [
            (Phase::Unknown, 10_001.0),
            (Phase::Down, 9_999.0),
            (Phase::Unknown, 10_002.0),
            (Phase::Up, 56_398.0),
        ]
    );
    assert_eq!(h.up_share, Some(56_398.0 / 66_397.0));
    assert_eq!(h.transitions, 1, "down, then (after a gap) up");
    assert_eq!(h.longest_outage_seconds, 9_999.0);
}

#[test]
fn a_site_in_remote_only_then_failsafe_has_one_outage_of_both() {
    let mode = |at, from, to| Event::mode("oxford", from, to, "x").at(t(at));
    let events = [
        Event::start().at(t(100)),
        mode(101, "unknown", "local"),
        mode(5_000, "local", "remote-only"),
        mode(5_300, "remote-only", "failsafe"),
        mode(5_400, "failsafe", "local"),
        Event::mode("cambridge", "local", "failsafe", "x").at(t(6_000)),
    ];
    let h = site(&events, "Oxford", Phase::Local, day());
    assert_eq!(
        phases(&h),
        [
            (Phase::Unknown, 101.0),
            (Phase::Local, 4_899.0),
            (Phase::RemoteOnly, 300.0),
            (Phase::Failsafe, 100.0),
            (Phase::Local, 81_000.0),
        ]
    );
    assert_eq!((h.transitions, h.outages), (3, 1));
    assert_eq!(h.longest_outage_seconds, 400.0);
    assert_eq!(h.longest_outage_start, Some(t(5_000)));
    assert_eq!(h.down_seconds, 400.0);
}

#[test]
fn a_site_no_event_mentions_is_in_its_mode_now_and_a_clock_set_back_keeps_order() {
    let h = site(
        &[Event::reload("x").at(t(5))],
        "oxford",
        Phase::Failsafe,
        day(),
    );
    assert_eq!(phases(&h), [(Phase::Failsafe, 86_400.0)]);
    assert_eq!(h.up_share, Some(0.0));
    assert_eq!(
        format!("{:.2}", h.up_share.unwrap() * 100.0),
        "0.00",
        "not -0.00"
    );
    let events = [
        Event::mode("oxford", "local", "failsafe", "x").at(t(1_000)),
        Event::mode("oxford", "failsafe", "local", "x").at(t(900)),
    ];
    let h = site(&events, "oxford", Phase::Local, day());
    assert_eq!(phases(&h), [(Phase::Local, 86_400.0)]);
    assert_eq!(h.transitions, 0);
}
