//! The look back's bars and event list, drawn from explicit times.

use super::*;
use crate::events::history::{RelayNow, Window};

#[test]
fn a_bar_places_each_stretch_by_its_share_of_the_day() {
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let w = Window::last_day(end);
    let a = "192.0.2.1".parse().unwrap();
    let events = [
        Event::state("oxford", "mail1", a, "up", "down", "x").at(w.start + history::DAY / 2),
        Event::state("oxford", "mail1", a, "down", "up", "x")
            .at(w.start + history::DAY / 2 + history::DAY / 4),
    ];
    let now = RelayNow {
        site: "oxford",
        host: "mail1",
        addresses: vec![("192.0.2.1".into(), Phase::Up)],
        drained: false,
    };
    let mut html = String::new();
    let view = View {
        start: w.start,
        seconds: history::DAY.as_secs_f64(),
        trimmed: false,
    };
    bar(&mut html, &history::relay(&events, &now, w), view);
    assert!(
        html.contains("class=\"p-up\" x=\"0.00\" y=\"0\" width=\"500.00\""),
        "{html}"
    );
    assert!(
        html.contains("class=\"p-down\" x=\"500.00\" y=\"0\" width=\"250.00\""),
        "{html}"
    );
    assert!(
        html.contains("down from 2025-06-15T03:06:40Z for 6h"),
        "{html}"
    );
}

#[test]
fn the_bars_begin_where_something_is_known_in_round_numbers() {
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let w = Window::last_day(end);
    let relay = |started: Duration| {
        let a = "192.0.2.1".parse().unwrap();
        let events = [
            Event::start().at(end - started),
            Event::state("oxford", "mail1", a, "unknown", "up", "x").at(end - started),
        ];
        let now = RelayNow {
            site: "oxford",
            host: "mail1",
            addresses: vec![("192.0.2.1".into(), Phase::Up)],
            drained: false,
        };
        history::relay(&events, &now, w)
    };
    let (hour, two) = (
        relay(Duration::from_secs(3600)),
        relay(Duration::from_secs(6000)),
    );
    let view = View::over(&[&hour, &two]).unwrap();
    assert_eq!(
        (view.start, view.seconds, view.trimmed),
        (end - Duration::from_secs(7200), 7200.0, true)
    );
    let fresh = relay(Duration::from_secs(30));
    let view = View::over(&[&fresh]).unwrap();
    assert_eq!(view.seconds, 300.0, "the shortest view");
    let mut html = String::new();
    bar(&mut html, &fresh, view);
    assert!(
        html.contains("class=\"p-up\" x=\"900.00\" y=\"0\" width=\"100.00\""),
        "{html}"
    );
    let old = relay(Duration::from_secs(30 * 3600));
    let view = View::over(&[&old, &fresh]).unwrap();
    assert_eq!((view.start, view.trimmed), (w.start, false));
    assert_eq!(ago(86_400.0), "24 h");
    assert_eq!(ago(1800.0), "30 min");
    assert_eq!(ago(5400.0), "1.5 h");
}

#[test]
fn relay_text_in_events_is_escaped() {
    let a = "192.0.2.1".parse().unwrap();
    let e = Arc::new(Event::state(
        "oxford",
        "mail1",
        a,
        "up",
        "down",
        "<script>x</script>",
    ));
    let mut html = String::new();
    recent(&mut html, &[e]);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}
