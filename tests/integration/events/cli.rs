//! `smarthostd events`: a table or JSON, filtered, relay text escaped; and `smarthostd status`
//! with the last 24 hours.

use smarthostd::events::Event;

use super::events;
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_events_as_a_table_or_json_with_relay_text_escaped() {
    let nasty = FakeSmtp::start(Behavior::Greeting("421 busy \x1b[2J\x1b]0;owned\x07\r\n")).await;
    let good = FakeSmtp::start(Behavior::Healthy).await;
    let server = TestServer::start(&Setup::new(two_sites(&nasty, &good))).await;
    let admin = server.admin.to_string();

    let out = cli(&[
        "events", "--admin", &admin, "--site", "oxford", "--since", "1h",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("REASON"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("oxford/mail1") && l.contains("unknown → down")),
        "{stdout}"
    );
    assert!(!lines.iter().any(|l| l.contains("cambridge")), "{stdout}");
    assert!(
        !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
        "{stdout}"
    );
    assert!(stdout.contains("\\u{1b}[2J"), "shown as text: {stdout}");

    let out = cli(&["events", "--admin", &admin, "--json", "--host", "mail1"]);
    assert!(out.status.success());
    let listed: Vec<Event> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, events(server.admin, "?host=mail1").await);
    assert!(listed.iter().any(|e| e.is_of_site("cambridge")));
    assert!(!out.stdout.contains(&0x1b));

    let out = cli(&["events", "--admin", &admin, "--since", "last tuesday"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "bad usage: {stderr}");
    assert!(
        stderr.contains("--since") && stderr.contains("RFC 3339"),
        "{stderr}"
    );

    let out = cli(&["status", "--admin", &admin]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("last 24 h"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("mail1") && l.contains(" 0.00 % up")),
        "{stdout}"
    );
}
