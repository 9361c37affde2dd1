//! Connection slots with eviction of the least active connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// When a connection last made progress (a message read or written), cheaply updated by its
/// task and read by the listener when it must choose whom to close.
#[derive(Debug, Clone)]
pub struct Progress {
    epoch: Instant,
    /// Milliseconds from `epoch`.
    at: Arc<AtomicU64>,
}

impl Progress {
    fn new(epoch: Instant) -> Self {
        let p = Self {
            epoch,
            at: Arc::new(AtomicU64::new(0)),
        };
        p.touch();
        p
    }

    /// Records progress now.
    pub fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.at.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> u64 {
        self.at.load(Ordering::Relaxed)
    }
}

/// One listener's slots.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    epoch: Instant,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    progress: Progress,
    close: CancellationToken,
}

/// A connection's slot: held for the connection's life, freed when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Update on every message read or written.
    pub progress: Progress,
    /// Cancelled when the listener closes this connection to admit another.
    pub evicted: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("slots lock");
        if let Some(i) = open.entries.iter().position(|e| e.id == self.id) {
            open.entries.swap_remove(i);
        }
    }
}

impl Slots {
    /// `capacity` slots (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection. When every slot is taken, the connection with the oldest progress
    /// (the longest idle, or the longest stalled on a client that does not read) is told to
    /// close and its slot is given to the new one; the flag says whether that happened.
    pub fn admit(self: &Arc<Self>) -> (Slot, bool) {
        let mut open = self.open.lock().expect("slots lock");
        let mut evicted = false;
        if open.entries.len() >= self.capacity
            && let Some((i, _)) = open
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.progress.last())
        {
            open.entries.swap_remove(i).close.cancel();
            evicted = true;
        }
        let id = open.next_id;
        open.next_id += 1;
        let progress = Progress::new(self.epoch);
        let close = CancellationToken::new();
        open.entries.push(Entry {
            id,
            progress: progress.clone(),
            close: close.clone(),
        });
        let slot = Slot {
            slots: self.clone(),
            id,
            progress,
            evicted: close,
        };
        (slot, evicted)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().expect("slots lock").entries.len()
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_connection_without_progress_for_longest() {
        let slots = Slots::new(2);
        let (a, evicted) = slots.admit();
        assert!(!evicted);
        let (b, _) = slots.admit();
        // a makes progress later than b: b is the one to go. Stamps are in milliseconds: a
        // touches until its stamp is past b's.
        a.progress.touch();
        while a.progress.last() <= b.progress.last() {
            std::hint::spin_loop();
            a.progress.touch();
        }
        let (c, evicted) = slots.admit();
        assert!(evicted);
        assert!(b.evicted.is_cancelled() && !a.evicted.is_cancelled());
        assert_eq!(slots.open(), 2);
        drop(b);
        assert_eq!(slots.open(), 2, "an evicted slot was already given up");
        drop(c);
        assert_eq!(slots.open(), 1);
        drop(a);
        assert_eq!(slots.open(), 0);
    }
}
