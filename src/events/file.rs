//! `state_dir/events.jsonl`: events appended one JSON object a line by a thread of their own,
//! rotated to `events.jsonl.1` when the next lines would take it past [`FILE_LIMIT`] (one old
//! file is kept), and read back at start.
//!
//! Writing never holds up anything else: lines reach the writer through a bounded queue that
//! the recording side never waits on; a line that cannot be written (full disk, a folder in the
//! file's place, a writer that fell behind) is counted in
//! `smarthostd_events_write_failures_total` and warned about at most once a minute, and the
//! event stays in memory. The file is opened for each batch, so a file moved away or replaced
//! (log rotation by hand, a fixed disk) is picked up at the next event.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tracing::warn;

use super::Event;
use crate::state;

/// The file name inside `server.state_dir`.
pub(crate) const FILE_NAME: &str = "events.jsonl";
/// The one older file kept after a rotation.
pub(crate) const OLD_FILE_NAME: &str = "events.jsonl.1";
/// The size past which the file is rotated.
pub(crate) const FILE_LIMIT: u64 = 1024 * 1024;
/// Lines waiting for the writer; beyond this they are counted as failures, never waited for.
/// As many as the memory keeps: a burst (the first verdicts of thousands of relays) is written
/// whole, a hung disk holds at most a few MiB.
pub(crate) const QUEUE: usize = super::RING;
/// Lines written with one opening of the file.
const BATCH: usize = 1024;
/// At most one warning about failed writes in this time.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(60);
/// The most read back from the end of each file at start.
const TAIL_LIMIT: u64 = 2 * FILE_LIMIT;

/// Counts lines not written and warns about them, at most once per [`WARN_EVERY`].
#[derive(Debug)]
pub(super) struct Failures {
    counter: Counter,
    limit: Mutex<RateLimit>,
    path: PathBuf,
}

impl Failures {
    pub(super) fn new(counter: Counter, path: PathBuf) -> Self {
        Self {
            counter,
            limit: Mutex::new(RateLimit::default()),
            path,
        }
    }

    /// `lines` were not written, because of `why`.
    pub(super) fn failed(&self, lines: usize, why: &dyn std::fmt::Display) {
        self.counter.inc_by(lines as u64);
        let allowed = self
            .limit
            .lock()
            .expect("rate limit lock")
            .allow(lines as u64, Instant::now());
        if let Some(not_written) = allowed {
            warn!(
                file = %self.path.display(), error = %why, not_written,
                "cannot append to the events file: the events stay in memory (GET /events), answers are not affected"
            );
        }
    }
}

/// One warning per [`WARN_EVERY`], carrying how many lines failed since the last one. Pure:
/// time comes in as an argument.
#[derive(Debug, Default)]
pub(super) struct RateLimit {
    last: Option<Instant>,
    pending: u64,
}

impl RateLimit {
    /// Records `lines` failures at `now`; `Some(total since the last warning)` when a warning
    /// is due.
    pub(super) fn allow(&mut self, lines: u64, now: Instant) -> Option<u64> {
        self.pending += lines;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// The recording side of the writer thread.
#[derive(Debug)]
pub(super) struct Writer {
    lines: SyncSender<String>,
    failures: Arc<Failures>,
}

impl Writer {
    /// Starts the writer thread for `path`, rotating at `limit` bytes.
    pub(super) fn start(
        path: PathBuf,
        limit: u64,
        queue: usize,
        failures: Arc<Failures>,
    ) -> io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (lines, rx) = std::sync::mpsc::sync_channel(queue);
        let thread_failures = failures.clone();
        let thread = std::thread::Builder::new()
            .name("smarthostd-events".into())
            .spawn(move || run(&path, limit, &rx, &thread_failures))?;
        Ok((Self { lines, failures }, thread))
    }

    /// Queues `event`'s line without waiting.
    pub(super) fn send(&self, event: &Event) {
        let line = serde_json::to_string(event).expect("an event serializes");
        match self.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self
                .failures
                .failed(1, &"the events writer is behind (slow or hung disk)"),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// A writer whose queue nobody reads (tests of a hung disk).
    #[cfg(test)]
    pub(super) fn stalled(queue: usize, failures: Arc<Failures>) -> (Self, Receiver<String>) {
        let (lines, rx) = std::sync::mpsc::sync_channel(queue);
        (Self { lines, failures }, rx)
    }
}

/// The writer thread: takes what is queued, appends it, until every sender is gone.
fn run(path: &Path, limit: u64, rx: &Receiver<String>, failures: &Failures) {
    let mut torn = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH
            && let Ok(line) = rx.try_recv()
        {
            batch.push(line);
        }
        match append(path, limit, &batch, torn) {
            Ok(()) => torn = false,
            Err(error) => {
                // A failed write may have left half a line: the next one starts on a new line.
                torn = true;
                failures.failed(batch.len(), &error);
            }
        }
    }
}

/// Appends `lines` to `path`, rotating first when they would take it past `limit`.
pub(super) fn append(path: &Path, limit: u64, lines: &[String], torn: bool) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 1);
    if torn {
        bytes.push(b'\n');
    }
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    // Never through a link, only into a regular file (state::file).
    let mut file = state::file::open_append(path)?;
    let size = file.metadata()?.len();
    if size > 0 && size + bytes.len() as u64 > limit {
        drop(file);
        std::fs::rename(path, old_path(path))?;
        file = state::file::open_append(path)?;
    }
    file.write_all(&bytes)
}

/// The older file ([`OLD_FILE_NAME`]) beside `path`.
pub(super) fn old_path(path: &Path) -> PathBuf {
    path.with_file_name(OLD_FILE_NAME)
}

/// The last `keep` events of the older file and then the current one, oldest first, and what
/// could not be read (damaged lines are skipped and counted; the rest is kept).
pub(super) fn read_tail(path: &Path, keep: usize) -> (Vec<Event>, Vec<String>) {
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for file in [old_path(path), path.to_path_buf()] {
        let text = match read_end(&file) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(e) => {
                problems.push(format!("{}: cannot read it: {e}", file.display()));
                continue;
            }
        };
        let mut damaged = 0;
        for line in text.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) => damaged += 1,
            }
        }
        if damaged > 0 {
            problems.push(format!(
                "{}: {damaged} damaged lines skipped",
                file.display()
            ));
        }
    }
    let surplus = events.len().saturating_sub(keep);
    events.drain(..surplus);
    (events, problems)
}

/// The last [`TAIL_LIMIT`] bytes of a regular file, from the first whole line; `None` when
/// there is no file.
fn read_end(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let Some(mut file) = state::file::open_read(path)? else {
        return Ok(None);
    };
    let start = file.metadata()?.len().saturating_sub(TAIL_LIMIT);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_LIMIT).read_to_end(&mut bytes)?;
    if start > 0 {
        // Started inside a line: drop it.
        let first = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.drain(..first);
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn line(n: u64) -> String {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n);
        serde_json::to_string(&Event::reload(&format!("reload {n}")).at(t)).unwrap()
    }

    #[test]
    fn the_file_rotates_before_it_passes_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let size = line(0).len() as u64 + 1;
        // Room for three lines a file.
        let limit = size * 3;
        for n in 0..10 {
            append(&path, limit, &[line(n)], false).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() <= limit);
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(old_path(&path)).unwrap();
        assert_eq!(current.lines().count(), 1, "{current}");
        assert_eq!(old.lines().count(), 3, "{old}");
        assert!(old.contains("reload 6") && current.contains("reload 9"));
        // Read back: the old file's lines, then the current one's, oldest first.
        let (events, problems) = read_tail(&path, 100);
        assert!(problems.is_empty(), "{problems:?}");
        let reasons: Vec<_> = events.iter().map(|e| e.reason.clone().unwrap()).collect();
        assert_eq!(reasons, ["reload 6", "reload 7", "reload 8", "reload 9"]);
        let (events, _) = read_tail(&path, 2);
        assert_eq!(events[0].reason.as_deref(), Some("reload 8"));
    }

    #[test]
    fn damaged_lines_are_skipped_and_counted_and_a_torn_line_does_not_spoil_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, format!("{}\n{{\"time\":\nnot json\n", line(1))).unwrap();
        // As after a write cut short: no newline at the end.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":\"20")
            .unwrap();
        append(&path, FILE_LIMIT, &[line(2)], true).unwrap();
        let (events, problems) = read_tail(&path, 100);
        assert_eq!(events.len(), 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("3 damaged lines"), "{problems:?}");
    }

    #[test]
    fn a_folder_in_the_files_place_is_an_error_and_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::create_dir(&path).unwrap();
        assert!(append(&path, FILE_LIMIT, &[line(1)], false).is_err());
        let (events, problems) = read_tail(&path, 100);
        assert!(events.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn warnings_come_at_most_once_a_minute_with_what_failed_meanwhile() {
        let mut limit = RateLimit::default();
        let t = Instant::now();
        assert_eq!(limit.allow(1, t), Some(1));
        assert_eq!(limit.allow(1, t + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(3, t + Duration::from_secs(59)), None);
        assert_eq!(limit.allow(1, t + WARN_EVERY), Some(5));
        assert_eq!(
            limit.allow(1, t + WARN_EVERY + Duration::from_secs(1)),
            None
        );
    }
}
