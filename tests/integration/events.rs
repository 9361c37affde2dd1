//! What happened: every kind of event after the action that causes it, oldest first; filters;
//! the history across a restart; `GET /events`, the last 24 hours in `/status` and on the page.
//! The events file's bound, rotation and a full disk in [`file`]; `smarthostd events` in [`cli`].

mod cli;
mod file;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use smarthostd::events::{Event, Kind};
use smarthostd::health::status::StatusReport;
use smarthostd::state::drains::Drain;

use crate::support::*;

/// `GET /events` with `query`, parsed.
pub(super) async fn events(admin: SocketAddr, query: &str) -> Vec<Event> {
    let (code, body) = http_status_and_body(admin, &format!("/events{query}")).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Polls the server's events until `want` holds, or fails after [`DEADLINE`].
pub(super) async fn wait_events(
    server: &TestServer,
    what: &str,
    want: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let want = &want;
    eventually(format!("recorded: {what}"), || async move {
        let list = server.control.events().list(&Default::default());
        if want(&list) {
            Ok(list)
        } else {
            Err(format!("{list:#?}"))
        }
    })
    .await
}

/// The position of the first event after `from` that `want` picks.
pub(super) fn find(
    list: &[Event],
    from: usize,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> usize {
    list.iter()
        .skip(from)
        .position(want)
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no {what} after position {from}: {list:#?}"))
}

pub(super) fn change(
    e: &Event,
    kind: Kind,
    site: &str,
    host: Option<&str>,
    from: &str,
    to: &str,
) -> bool {
    e.kind == kind
        && e.site.as_deref() == Some(site)
        && e.host.as_deref() == host
        && e.from.as_deref() == Some(from)
        && e.to.as_deref() == Some(to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_follows_its_cause_oldest_first() {
    let mut relays = Relays::start().await;
    let mut setup = Setup::new(relays.toml());
    let server = TestServer::start(&setup).await;
    let oxford = "oxford.smarthost.internal";

    // A relay dies: its address goes down.
    relays.oxford[0].stop();
    server
        .wait_mx(oxford, |m| !m.contains(&mx(10, "mail1.oxford")))
        .await;
    // Its sibling is drained: Oxford's answer names only Cambridge; then undrained.
    let drain = Some(Drain { until: None });
    server
        .control
        .drain("oxford", "mail2", drain)
        .await
        .unwrap();
    server.control.drain("oxford", "mail2", None).await.unwrap();
    // A maintenance window that ends by itself.
    let until = SystemTime::now() + Duration::from_secs(1);
    let timed = Some(Drain { until: Some(until) });
    server
        .control
        .drain("cambridge", "mail1", timed)
        .await
        .unwrap();
    wait_events(&server, "the end of the maintenance window", |l| {
        l.iter()
            .any(|e| e.kind == Kind::Undrain && e.is_about("cambridge", "mail1"))
    })
    .await;
    // A reload that takes, and one that does not.
    setup.rest = format!("# changed\n{}", relays.toml());
    server.rewrite(&setup);
    let reply = server.control.reload().await.unwrap();
    std::fs::write(
        server.dir.path().join("smarthost.toml"),
        "[server]\nbogus = 1\n",
    )
    .unwrap();
    let error = server.control.reload().await.unwrap_err().to_string();

    let list = events(server.admin, "").await;
    let times: Vec<SystemTime> = list.iter().map(|e| e.time).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {list:#?}"
    );
    let start = find(&list, 0, "start", |e| e.kind == Kind::Start);
    let first = find(&list, start, "a first verdict", |e| {
        change(e, Kind::State, "oxford", Some("mail1"), "unknown", "up")
    });
    let first_mode = find(&list, start, "the first mode", |e| {
        change(e, Kind::Mode, "oxford", None, "unknown", "local")
    });
    let down = find(&list, first.max(first_mode), "mail1 down", |e| {
        change(e, Kind::State, "oxford", Some("mail1"), "up", "down")
    });
    let address = relays.oxford[0].addr.ip().to_string();
    assert_eq!(list[down].address.as_deref(), Some(address.as_str()));
    assert!(
        list[down].reason.as_deref().is_some_and(|r| !r.is_empty()),
        "the probe result that decided it: {:?}",
        list[down]
    );
    let drained = find(&list, down, "the drain", |e| {
        change(
            e,
            Kind::Drain,
            "oxford",
            Some("mail2"),
            "undrained",
            "drained",
        )
    });
    assert_eq!(list[drained].reason.as_deref(), Some("by operator"));
    let remote = find(&list, drained, "Oxford without local relays", |e| {
        change(e, Kind::Mode, "oxford", None, "local", "remote-only")
    });
    let undrained = find(&list, remote, "the undrain", |e| {
        change(
            e,
            Kind::Undrain,
            "oxford",
            Some("mail2"),
            "drained",
            "undrained",
        )
    });
    assert_eq!(list[undrained].reason.as_deref(), Some("by operator"));
    let back = find(&list, undrained, "Oxford's relays back", |e| {
        change(e, Kind::Mode, "oxford", None, "remote-only", "local")
    });
    let timed = find(&list, back, "the timed drain", |e| {
        e.kind == Kind::Drain && e.is_about("cambridge", "mail1")
    });
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    assert_eq!(list[timed].until.map(millis), Some(millis(until)));
    let ended = find(&list, timed, "the window's end", |e| {
        e.kind == Kind::Undrain && e.is_about("cambridge", "mail1")
    });
    assert_eq!(
        list[ended].reason.as_deref(),
        Some("maintenance window over")
    );
    let reloaded = find(&list, ended, "the reload", |e| e.kind == Kind::Reload);
    assert_eq!(list[reloaded].reason.as_deref(), Some(reply.as_str()));
    assert!(reply.starts_with("reloaded: "), "{reply}");
    let failed = find(&list, reloaded, "the failed reload", |e| {
        e.kind == Kind::ReloadFailed
    });
    assert_eq!(list[failed].reason.as_deref(), Some(error.as_str()));
    assert!(error.contains("bogus"), "{error}");

    // The file holds them too.
    wait_file(
        &server.dir.path().join("events.jsonl"),
        "\"kind\":\"reload_failed\"",
    )
    .await;
}

/// Waits until the file at `path` holds `needle`, or fails after [`DEADLINE`].
pub(super) async fn wait_file(path: &std::path::Path, needle: &str) {
    eventually(
        format!("{} holding {needle}", path.display()),
        || async move {
            match std::fs::read_to_string(path) {
                Ok(text) if text.contains(needle) => Ok(()),
                Ok(text) => Err(text),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_chosen_by_site_host_and_since() {
    let mut relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    relays.cambridge[0].stop();
    wait_events(&server, "cambridge/mail1 down", |l| {
        l.iter()
            .any(|e| change(e, Kind::State, "cambridge", Some("mail1"), "up", "down"))
    })
    .await;
    server.control.reload().await.unwrap();

    let all = events(server.admin, "").await;
    // As served: to the millisecond.
    let down_time = all
        .iter()
        .find(|e| e.kind == Kind::State && e.to.as_deref() == Some("down"))
        .unwrap()
        .time;
    let oxford = events(server.admin, "?site=OXFORD").await;
    assert!(!oxford.is_empty());
    assert!(oxford.iter().all(|e| e.is_of_site("oxford")), "{oxford:#?}");
    assert_eq!(
        oxford.len(),
        all.iter()
            .filter(|e| e.site.as_deref() == Some("oxford"))
            .count()
    );
    let mail2 = events(server.admin, "?host=mail2").await;
    assert!(!mail2.is_empty());
    assert!(
        mail2.iter().all(|e| e.is_about("oxford", "mail2")),
        "{mail2:#?}"
    );
    let cam1 = events(server.admin, "?site=cambridge&host=mail1").await;
    assert!(cam1.iter().all(|e| e.is_about("cambridge", "mail1")));
    assert!(cam1.iter().any(|e| e.to.as_deref() == Some("down")));

    // Since a time (in UTC, or with an offset: the same moment), or a duration back from now.
    let at = humantime::format_rfc3339_millis(down_time).to_string();
    let since = events(server.admin, &format!("?since={at}")).await;
    assert!(since.iter().all(|e| e.time >= down_time), "{since:#?}");
    let later: Vec<&Event> = all.iter().filter(|e| e.time >= down_time).collect();
    assert_eq!(since.iter().collect::<Vec<_>>(), later);
    assert!(since.iter().any(|e| e.kind == Kind::Reload));
    assert!(since.len() < all.len(), "earlier events are left out");
    let shifted = down_time + Duration::from_secs(3600);
    let east = humantime::format_rfc3339_millis(shifted).to_string();
    let east = format!("{}%2B01:00", east.trim_end_matches('Z'));
    assert_eq!(events(server.admin, &format!("?since={east}")).await, since);
    assert_eq!(events(server.admin, "?since=1h").await, all);
    let recent = events(server.admin, "?since=0s").await;
    assert!(recent.len() < all.len());

    for bad in ["?since=yesterday", "?sit=oxford"] {
        let (code, body) = http_status_and_body(server.admin, &format!("/events{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_survives_a_restart_with_the_stop_and_start_in_it() {
    let mut relays = Relays::start().await;
    let setup = Setup::new(relays.toml());
    let server = TestServer::start(&setup).await;
    relays.oxford[0].stop();
    wait_events(&server, "mail1 down", |l| {
        l.iter()
            .any(|e| change(e, Kind::State, "oxford", Some("mail1"), "up", "down"))
    })
    .await;
    let before = events(server.admin, "").await;

    let dir = server.stop().await;
    let server = TestServer::start_in(&setup, dir).await;
    let after = events(server.admin, "").await;
    assert_eq!(&after[..before.len()], &before[..], "kept, in order");
    let stop = find(&after, before.len(), "the stop", |e| e.kind == Kind::Stop);
    assert_eq!(stop, before.len(), "the stop comes right after: {after:#?}");
    let start = find(&after, stop, "the start", |e| e.kind == Kind::Start);
    find(&after, start, "mail1's first verdict since", |e| {
        change(e, Kind::State, "oxford", Some("mail1"), "unknown", "down")
    });

    // The last day knows of the outage before the restart and of the one since.
    let status = server.control.status().await.unwrap();
    let mail1 = &status.sites[0].hosts[0];
    let day = mail1.last_24h.as_ref().unwrap();
    assert_eq!(
        day.transitions, 1,
        "up, then down (the restart in between is no change)"
    );
    assert_eq!(day.outages, 2, "the restart cut the outage in two");
    assert!(day.down_seconds > 0.0 && day.up_seconds > 0.0, "{day:?}");
    assert!(day.up_share.is_some_and(|s| s > 0.0 && s < 1.0), "{day:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_page_show_the_last_day() {
    let mut relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    relays.oxford[0].stop();
    relays.oxford[1].stop();
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            !m.is_empty() && m.iter().all(|(p, _)| *p == 20)
        })
        .await;
    let (code, body) = http_status_and_body(server.admin, "/status").await;
    assert_eq!(code, 200);
    let status: StatusReport = serde_json::from_str(&body).unwrap();
    let oxford = &status.sites[0];
    let site = oxford.last_24h.as_ref().expect("the site's last day");
    assert_eq!(site.outages, 1, "{site:?}");
    assert!(site.longest_outage_seconds > 0.0 && site.longest_outage_start.is_some());
    let mail1 = oxford.hosts[0]
        .last_24h
        .as_ref()
        .expect("the relay's last day");
    assert_eq!((mail1.transitions, mail1.outages), (1, 1), "{mail1:?}");
    assert!(mail1.up_share.is_some_and(|s| s < 1.0), "{mail1:?}");
    let states: Vec<&str> = mail1.timeline.iter().map(|s| s.state.name()).collect();
    assert_eq!(states, ["unknown", "up", "down"]);
    let cambridge = status.sites[1].hosts[0].last_24h.as_ref().unwrap();
    assert_eq!((cambridge.transitions, cambridge.outages), (0, 0));
    assert_eq!(cambridge.up_share, Some(1.0));

    let (code, page) = http_status_and_body(server.admin, "/").await;
    assert_eq!(code, 200);
    for needed in [
        "Last 24 hours",
        "<svg",
        "class=\"p-down\"",
        "Recent events",
        "remote-only",
    ] {
        assert!(
            page.contains(needed),
            "{needed} missing from the page:\n{page}"
        );
    }
}
