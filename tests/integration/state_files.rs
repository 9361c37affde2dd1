//! The files of `state_dir` against what a local attacker can put in their place: a symbolic
//! link to a file of secrets (read into the log as "damaged lines" before), a link at the
//! temporary name (written through before), a FIFO (the start hung on it before), a folder.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use smarthostd::state::drains::Drain;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// What an attacker would like to read: shaped like `/etc/shadow`.
const SECRETS: &str = "root:$6$s3cr3t-hash:19000:0:99999:7:::\nhunter2-token\n";

/// Two sites of one healthy relay each.
async fn relays() -> (FakeSmtp, FakeSmtp, Setup) {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(two_sites(&oxford, &cambridge));
    (oxford, cambridge, setup)
}

/// Writes the config of `setup` into `dir` (its state_dir).
fn write_config(setup: &Setup, dir: &Path) {
    std::fs::write(dir.join("smarthost.toml"), setup.render()).unwrap();
    std::fs::write(dir.join("smarthost.internal.zone"), &setup.zone_file).unwrap();
}

/// Runs `smarthostd serve` on the config in `dir` until it exits, for at most [`DEADLINE`]:
/// its exit status and everything it wrote to stderr (log and error).
fn serve_until_exit(dir: &Path) -> (ExitStatus, String) {
    let stderr = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smarthostd"))
        .args(["serve", "--log-format", "text", "--config"])
        .arg(dir.join("smarthost.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let exited = poll_blocking(DEADLINE, || child.try_wait().unwrap());
    let said = std::fs::read_to_string(&stderr).unwrap();
    let Ok(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("still running after {DEADLINE:?} (hung on a state file?):\n{said}");
    };
    (status, said)
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_drained_hosts_is_refused_at_start_and_the_file_it_names_never_read() {
    let (_a, _b, setup) = relays().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("shadow");
    std::fs::write(&secrets, SECRETS).unwrap();
    std::os::unix::fs::symlink(&secrets, dir.path().join("drained-hosts")).unwrap();
    write_config(&setup, dir.path());
    let (status, stderr) = serve_until_exit(dir.path());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("drained-hosts") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    for secret in ["s3cr3t", "hunter2", "root:"] {
        assert!(!stderr.contains(secret), "{secret} in:\n{stderr}");
    }

    // The lock file, likewise.
    std::fs::remove_file(dir.path().join("drained-hosts")).unwrap();
    std::fs::remove_file(dir.path().join("smarthostd.lock")).ok();
    std::os::unix::fs::symlink(&secrets, dir.path().join("smarthostd.lock")).unwrap();
    let (status, stderr) = serve_until_exit(dir.path());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("smarthostd.lock") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&secrets).unwrap(), SECRETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_drains_line_is_reported_by_number_and_length_never_its_text() {
    let (_a, _b, setup) = relays().await;
    let dir = tempfile::tempdir().unwrap();
    // The cluster's form too: stamped registers, an undrain kept for the peers, and a stamp
    // that is not one.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 3_600_000;
    std::fs::write(
        dir.path().join("drained-hosts"),
        format!(
            "oxford/mail1 stamp={hour_ago}.0@10.0.0.53:8053\nhunter2-token\n\
             cambridge/mail1 undrained stamp={hour_ago}.1@10.0.1.53:8053\n\
             oxford/mail2 stamp=hunter2\n"
        ),
    )
    .unwrap();
    let process = ServerProcess::spawn_text_log(&setup, dir);
    let log = process.log_text();
    assert!(
        log.contains("line 2 (13 bytes): not site/host")
            && log.contains("line 4 (26 bytes): bad stamp"),
        "the lines named:\n{log}"
    );
    assert!(!log.contains("hunter2"), "its text logged:\n{log}");
    assert_eq!(
        mx_set(
            &udp(
                process.dns,
                "oxford.smarthost.internal",
                hickory_proto::rr::RecordType::MX
            )
            .await
        ),
        vec![mx(20, "mail1.cambridge")],
        "the valid drain holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_at_a_temporary_name_is_never_written_through() {
    let (_a, _b, setup) = relays().await;
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious");
    std::fs::write(&precious, SECRETS).unwrap();
    // The names earlier versions wrote through, and the file itself, swapped for a link while
    // the server runs.
    for name in ["drained-hosts.tmp", "resolved-hosts.tmp"] {
        std::os::unix::fs::symlink(&precious, dir.path().join(name)).unwrap();
    }
    let server = TestServer::start_in(&setup, dir).await;
    let state = server.dir.path().to_path_buf();
    let done = server
        .control
        .drain("oxford", "mail1", Some(Drain { until: None }))
        .await
        .unwrap();
    assert_eq!(done.not_saved, None);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), SECRETS);
    let drains = state.join("drained-hosts");
    assert!(std::fs::symlink_metadata(&drains).unwrap().is_file());
    assert!(
        std::fs::read_to_string(&drains)
            .unwrap()
            .contains("oxford/mail1")
    );

    std::fs::remove_file(&drains).unwrap();
    std::os::unix::fs::symlink(&precious, &drains).unwrap();
    server
        .control
        .drain("cambridge", "mail1", Some(Drain { until: None }))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), SECRETS);
    assert!(
        std::fs::symlink_metadata(&drains).unwrap().is_file(),
        "the link is replaced, not followed"
    );
    for name in ["drained-hosts.tmp", "resolved-hosts.tmp"] {
        assert!(
            std::fs::symlink_metadata(state.join(name))
                .unwrap()
                .is_symlink()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_folder_in_place_of_a_state_file_is_a_clear_error_and_no_hang() {
    let (_a, _b, setup) = relays().await;

    // The drains: the start stops, naming the file and what is in its place.
    for (what, make) in [
        ("a FIFO", mkfifo as fn(&Path)),
        ("a folder", |p: &Path| std::fs::create_dir(p).unwrap()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        make(&dir.path().join("drained-hosts"));
        write_config(&setup, dir.path());
        let (status, stderr) = serve_until_exit(dir.path());
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("drained-hosts")
                && stderr.contains(&format!("it is {what}, not a regular file")),
            "{stderr}"
        );
    }

    // The lock file: the start stops too.
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("smarthostd.lock"));
    write_config(&setup, dir.path());
    let (status, stderr) = serve_until_exit(dir.path());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("smarthostd.lock") && stderr.contains("it is a FIFO"),
        "{stderr}"
    );

    // The event history and the last known addresses only lose what they held: the server
    // starts and says why.
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("events.jsonl"));
    mkfifo(&dir.path().join("resolved-hosts"));
    let process = ServerProcess::spawn_text_log(&setup, dir);
    let log = process.log_text();
    for file in ["events.jsonl", "resolved-hosts"] {
        assert!(
            log.lines()
                .any(|l| l.contains(file) && l.contains("it is a FIFO, not a regular file")),
            "{file}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_linked_event_history_or_lock_file_is_never_written_through() {
    let (_a, _b, setup) = relays().await;

    // The lock file is truncated and rewritten at start: with another name, the start stops.
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious");
    std::fs::write(&precious, SECRETS).unwrap();
    std::fs::hard_link(&precious, dir.path().join("smarthostd.lock")).unwrap();
    write_config(&setup, dir.path());
    let (status, stderr) = serve_until_exit(dir.path());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("smarthostd.lock") && stderr.contains("hard links"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), SECRETS);

    // The event history is appended to: with another name, events stay in memory and the
    // failed writes are said.
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious");
    std::fs::write(&precious, SECRETS).unwrap();
    std::fs::hard_link(&precious, dir.path().join("events.jsonl")).unwrap();
    let process = ServerProcess::spawn_text_log(&setup, dir);
    let log = process
        .log_with(&["cannot append to the events file"])
        .await;
    assert!(log.contains("hard links"));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), SECRETS);
}
