//! Events: what happened, kept for the question an operator asks after an incident — when did
//! a site's relays drop, for how long, how often did they flap, what were senders given?
//!
//! Beside the flow, as `metrics` is: the health task records address state changes, drains
//! and answer-mode changes, the admin side records reloads and serves the history.
//!
//! - [`Event`] ([`event`]): one change, as JSON.
//! - [`EventLog`]: the last [`RING`] events in memory, each also appended to
//!   `state_dir/events.jsonl` by a thread of its own ([`file`](mod@file)): bounded, rotated,
//!   read back at start, and never able to hold up probing or answering.
//! - [`filter`]: choosing events by site, host and time; [`times`]: their times as RFC 3339 text.
//! - [`history`]: each relay's and each site's last 24 hours rebuilt from the events and the
//!   state now (pure): share of time up, transitions, longest outage, and the timeline.

pub(crate) mod event;
pub(crate) mod file;
pub(crate) mod filter;
pub(crate) mod history;
pub(crate) mod times;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;

pub use event::{Event, Kind};
pub use filter::Filter;

/// Events kept in memory (and read back at start): about a day of a relay flapping every ten
/// seconds, in a few MiB.
pub const RING: usize = 10_000;

/// The event history. Cheap to clone; recording never waits on the disk.
#[derive(Clone, Debug)]
pub struct EventLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ring: Mutex<VecDeque<Arc<Event>>>,
    capacity: usize,
    /// `None` for a log kept only in memory, and once closed.
    writer: Mutex<Option<file::Writer>>,
}

impl EventLog {
    /// A log kept in memory only.
    #[cfg(test)]
    fn in_memory(capacity: usize) -> Self {
        Self::with(capacity, Vec::new(), None)
    }

    /// The log of `state_dir`: its last events read back from `events.jsonl` (and the file
    /// before it), and a writer thread appending new ones. Lines not written are counted in
    /// `failures`. What could not be read back is logged and skipped.
    pub fn open(
        state_dir: &Path,
        failures: Counter,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let path = state_dir.join(file::FILE_NAME);
        let (history, problems) = file::read_tail(&path, RING);
        for problem in problems {
            tracing::warn!(%problem, "part of the event history could not be read back");
        }
        let failures = Arc::new(file::Failures::new(failures, path.clone()));
        let (writer, thread) = file::Writer::start(path, file::FILE_LIMIT, file::QUEUE, failures)?;
        Ok((Self::with(RING, history, Some(writer)), thread))
    }

    fn with(capacity: usize, history: Vec<Event>, writer: Option<file::Writer>) -> Self {
        let mut ring: VecDeque<Arc<Event>> = history.into_iter().map(Arc::new).collect();
        while ring.len() > capacity {
            ring.pop_front();
        }
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(ring),
                capacity,
                writer: Mutex::new(writer),
            }),
        }
    }

    /// Records `event`, stamped with the time it is recorded (so that the history's order is
    /// its time order), and queues it for the file.
    pub fn record(&self, mut event: Event) {
        let mut ring = self.inner.ring.lock().expect("events lock");
        event.time = SystemTime::now();
        if let Some(writer) = &*self.inner.writer.lock().expect("writer lock") {
            writer.send(&event);
        }
        if ring.len() == self.inner.capacity {
            ring.pop_front();
        }
        ring.push_back(Arc::new(event));
    }

    /// The events `filter` chooses, oldest first.
    pub fn list(&self, filter: &Filter) -> Vec<Event> {
        self.shared()
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| Event::clone(e))
            .collect()
    }

    /// Every event kept, oldest first, without copying them.
    pub fn shared(&self) -> Vec<Arc<Event>> {
        self.inner
            .ring
            .lock()
            .expect("events lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Stops writing: events recorded from now on are kept in memory only. The writer thread
    /// ends once it has written what was queued.
    pub fn close(&self) {
        self.inner.writer.lock().expect("writer lock").take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_events_oldest_first() {
        let log = EventLog::in_memory(3);
        for n in 0..5 {
            log.record(Event::reload(&n.to_string()));
        }
        let kept: Vec<_> = log
            .list(&Filter::default())
            .into_iter()
            .map(|e| e.reason.unwrap())
            .collect();
        assert_eq!(kept, ["2", "3", "4"]);
        let times: Vec<_> = log.shared().iter().map(|e| e.time).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn a_writer_that_falls_behind_costs_file_lines_never_a_wait() {
        let counter = Counter::default();
        let failures = Arc::new(file::Failures::new(counter.clone(), "events.jsonl".into()));
        let (writer, queued) = file::Writer::stalled(2, failures);
        let log = EventLog::with(10, Vec::new(), Some(writer));
        for n in 0..5 {
            log.record(Event::reload(&n.to_string()));
        }
        assert_eq!(counter.get(), 3, "two lines queued, three counted as lost");
        assert_eq!(log.list(&Filter::default()).len(), 5, "all kept in memory");
        assert_eq!(queued.try_iter().count(), 2);
        log.close();
        log.record(Event::reload("after"));
        assert_eq!(
            counter.get(),
            3,
            "a closed log writes nothing and fails nothing"
        );
    }
}
