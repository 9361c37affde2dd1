//! The events file: rotated at its bound with one old file kept, both read back at start; a
//! full disk (and a folder in the file's place) costs file lines and nothing else.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use smarthostd::events::{Event, Kind};

use super::{Relays, events, find, wait_file};
use crate::support::http_status_and_body;
use crate::support::*;

/// The size the events file is rotated at.
const FILE_LIMIT: u64 = 1024 * 1024;

/// The value of an unlabelled sample in a scrape.
async fn metric(admin: SocketAddr, name: &str) -> f64 {
    let (_, scrape) = http_status_and_body(admin, "/metrics").await;
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{scrape}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_rotated_at_its_bound_and_both_files_are_read_back() {
    let relays = Relays::start().await;
    let setup = Setup::new(relays.toml());
    let dir = tempfile::tempdir().unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
    let line =
        |reason: &str| serde_json::to_string(&Event::reload(reason).at(long_ago)).unwrap() + "\n";
    // An older file, and a current one a few bytes short of the bound: the next line rotates.
    std::fs::write(dir.path().join("events.jsonl.1"), line("very old")).unwrap();
    let mut seeded = String::new();
    let mut n = 0;
    while seeded.len() as u64 + 1200 < FILE_LIMIT {
        seeded.push_str(&line(&format!("seeded {n} {}", "x".repeat(900))));
        n += 1;
    }
    let pad = (FILE_LIMIT - 10) as usize - seeded.len() - line("seeded last ").len();
    seeded.push_str(&line(&format!("seeded last {}", "y".repeat(pad))));
    assert_eq!(seeded.len() as u64, FILE_LIMIT - 10);
    std::fs::write(dir.path().join("events.jsonl"), &seeded).unwrap();

    let server = TestServer::start_in(&setup, dir).await;
    // Read back at start: both files, oldest first, before this run's start.
    let list = events(server.admin, "").await;
    assert_eq!(list[0].reason.as_deref(), Some("very old"));
    assert_eq!(list[1].reason.as_deref().map(|r| &r[..8]), Some("seeded 0"));
    let start = find(&list, 0, "the start", |e| e.kind == Kind::Start);
    assert_eq!(start, n + 2);

    // The start's line did not fit: the seeded file became the old one, the very old one went.
    let path = server.dir.path().join("events.jsonl");
    let old = server.dir.path().join("events.jsonl.1");
    wait_file(&path, "\"kind\":\"start\"").await;
    assert_eq!(std::fs::read_to_string(&old).unwrap(), seeded);
    let current = std::fs::metadata(&path).unwrap().len();
    assert!(current < 64 * 1024, "a fresh file: {current} bytes");

    // Another run reads the seeded file and the new one, and no longer the very old one.
    let dir = server.stop().await;
    let server = TestServer::start_in(&setup, dir).await;
    let list = events(server.admin, "").await;
    assert_eq!(list[0].reason.as_deref().map(|r| &r[..8]), Some("seeded 0"));
    assert!(!list.iter().any(|e| e.reason.as_deref() == Some("very old")));
    let starts = list.iter().filter(|e| e.kind == Kind::Start).count();
    assert_eq!(starts, 2, "{:#?}", &list[n..]);
    for file in [&path, &old] {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= FILE_LIMIT, "{}: {size}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_costs_file_lines_and_nothing_else() {
    let mut relays = Relays::start().await;
    let server = TestServer::start(&Setup::new(relays.toml())).await;
    let failures = "smarthostd_events_write_failures_total";
    assert_eq!(metric(server.admin, failures).await, 0.0);
    let path = server.dir.path().join("events.jsonl");
    let oxford = "oxford.smarthost.internal";

    // Every write now fails with "no space left on device".
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    relays.oxford[0].stop();
    server
        .wait_mx(oxford, |m| !m.contains(&mx(10, "mail1.oxford")))
        .await;
    let full = wait_metric(server.admin, failures, 1.0).await;
    relays.oxford[0].restart().await;
    server
        .wait_mx(oxford, |m| m.contains(&mx(10, "mail1.oxford")))
        .await;
    let fuller = wait_metric(server.admin, failures, full + 1.0).await;
    // Kept in memory all the same.
    let list = events(server.admin, "?site=oxford&host=mail1").await;
    assert!(list.iter().any(|e| e.to.as_deref() == Some("down")));
    assert!(list.iter().any(|e| e.from.as_deref() == Some("down")));

    // A folder in the file's place: the same.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    relays.oxford[1].stop();
    server
        .wait_mx(oxford, |m| !m.contains(&mx(10, "mail2.oxford")))
        .await;
    let folder = wait_metric(server.admin, failures, fuller + 1.0).await;
    // Gone again: the next event is written.
    std::fs::remove_dir(&path).unwrap();
    relays.oxford[1].restart().await;
    server
        .wait_mx(oxford, |m| m.contains(&mx(10, "mail2.oxford")))
        .await;
    wait_file(&path, "\"from\":\"down\"").await;
    assert_eq!(
        metric(server.admin, failures).await,
        folder,
        "no failure since"
    );
}

/// Polls a counter until it reaches `at_least`; its value then.
async fn wait_metric(admin: SocketAddr, name: &str, at_least: f64) -> f64 {
    eventually(format!("{name} at {at_least} or more"), || async move {
        let value = metric(admin, name).await;
        if value >= at_least {
            Ok(value)
        } else {
            Err(value.to_string())
        }
    })
    .await
}
