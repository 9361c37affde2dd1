//! Text from the network cannot forge a log line: a blocklist's TXT reason, a relay's reply and a
//! name server's answers that carry a line break, a fake log line and a terminal escape reach
//! the text log (as journald and `journalctl -f` see it) as one line, escaped, and the status
//! shows them escaped once, not twice.

use hickory_proto::rr::Name;

use crate::blocklist::Blocklist;
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// The attack of the report: a line break, a log line of its own, a screen clear.
const FORGED: &str = "spam\r\n2026-01-01T00:00:00Z  INFO smarthostd: forged\x1b[2J";
/// The same as the log and the status must show it.
const SHOWN: &str = "spam\\r\\n2026-01-01T00:00:00Z  INFO smarthostd: forged\\u{1b}[2J";

/// A server logging text, started in a fresh folder.
fn text_server(setup: &Setup) -> ServerProcess {
    ServerProcess::spawn_text_log(setup, tempfile::tempdir().unwrap())
}

/// Whether `c` shows as itself: no control character, no invisible or direction-changing one.
fn shows_as_itself(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'
        )
}

/// No character of the log but a line feed is a control or invisible one, and every line that
/// carries the network's words is a line of `message` that quotes them as `shown`.
fn assert_one_line_each(log: &str, message: &str, shown: &str) {
    for c in log.chars() {
        assert!(
            c == '\n' || shows_as_itself(c),
            "a raw {c:?} in the log:\n{log}"
        );
    }
    let quoting: Vec<&str> = log.lines().filter(|l| l.contains("forged")).collect();
    assert!(!quoting.is_empty(), "{log}");
    for line in &quoting {
        assert!(
            line.contains(message) && line.contains(shown),
            "a line of the network's making:\n{line}\n\nin:\n{log}"
        );
        assert!(!line.starts_with("2026-01-01"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocklist_reason_cannot_forge_a_log_line_or_clear_the_screen() {
    let list = Blocklist::start().await;
    list.set("7.100.51.198.bl.test.", "127.0.0.2", Some(FORGED));
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}]\negress = [\"198.51.100.7\"]\n\
         [sites.cambridge]\nhosts = [{}]\n\
         [reputation]\nlists = [{{ zone = \"bl.test\", name = \"bl\" }}]\nresolver = [\"{}\"]\n\
         interval = \"1s\"\ntimeout = \"300ms\"\n",
        oxford.host_entry("mail1"),
        cambridge.host_entry("mail1"),
        list.addr
    ));
    let message = "egress address listed on a blocklist";
    let process = text_server(&setup);
    assert_one_line_each(&process.log_with(&[message]).await, message, SHOWN);

    // The status shows the reason as the log does: escaped once, not twice.
    let status = cli(&["status", "--admin", &process.admin.to_string()]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{shown}");
    assert!(shown.contains(SHOWN), "{shown}");
    assert!(!shown.contains("\\\\"), "escaped twice: {shown}");
    let (code, body) = http_status_and_body(process.admin, "/status").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reason = &json["sites"][0]["reputation"]["egress"][0]["lists"][0]["reason"];
    assert_eq!(reason.as_str(), Some(SHOWN), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reply_cannot_forge_a_log_line_or_clear_the_screen() {
    // A reply line ends at a line feed, so a relay forges with a carriage return; a line that
    // is no reply at all is quoted in the reason too.
    let busy = FakeSmtp::start(Behavior::Greeting(
        "421 spam\r2026-01-01T00:00:00Z  INFO smarthostd: forged\x1b[2J\r\n",
    ))
    .await;
    let garbage = FakeSmtp::start(Behavior::Greeting(
        "\r2026-01-01T00:00:00Z  INFO smarthostd: forged\x1b[2J\r\n",
    ))
    .await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
        busy.host_entry("mail1"),
        garbage.host_entry("mail2"),
        cambridge.host_entry("mail1")
    ));
    let process = text_server(&setup);
    let log = process
        .log_with(&["malformed reply line", "greeting was"])
        .await;
    assert_one_line_each(
        &log,
        "address state changed",
        "\\r2026-01-01T00:00:00Z  INFO smarthostd: forged\\u{1b}[2J",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_error_cannot_forge_a_log_line() {
    // The relay's name is an alias of a name made of the attack's bytes, which does not exist:
    // the resolver's error quotes that name.
    let names = Blocklist::start().await;
    let target = Name::from_labels(vec![FORGED.as_bytes().to_vec(), b"test".to_vec()]).unwrap();
    names.alias("relay.isp.test.", target);
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{{ name = \"isp1\", fqdn = \"relay.isp.test\", port = 25 }}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        cambridge.host_entry("mail1")
    ));
    setup
        .probe
        .push_str(&format!("resolver = [\"{}\"]\n", names.addr));
    let process = text_server(&setup);
    let log = process.log_with(&["resolution failed"]).await;
    for c in log.chars() {
        assert!(c == '\n' || shows_as_itself(c), "a raw {c:?}:\n{log}");
    }
    let quoting: Vec<&str> = log.lines().filter(|l| l.contains("forged")).collect();
    assert!(!quoting.is_empty(), "the error quotes the name:\n{log}");
    for line in quoting {
        assert!(line.contains("resolution failed"), "{line}\n\nin:\n{log}");
        assert!(!line.starts_with("2026-01-01"), "{line}");
    }
}
