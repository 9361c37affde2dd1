//! Whole replies kept per UDP thread for one generation, for the queries whose reply depends
//! on nothing but their bytes: the same question, flags and OPT record from any client allowed
//! to ask gets the same bytes, its own ID patched in. A hit skips parsing, lookup and writing,
//! which is most of what smarthostd's own code costs a query; what is left is the kernel's
//! (README, "Benchmarks").
//!
//! Which replies qualify is decided where they are made ([`Outcome::reusable`]): none with a
//! cookie (ours is made for the client's address), a client subnet (believed by address), a
//! view (chosen by address) or a warm-standby variant (picked per query). `allow_query`, the
//! one thing about the client a reusable reply has not seen, is checked before every hit. A
//! new generation empties the cache; a slot holds the last reply that hashed to it, so a flood
//! of distinct names only overwrites slots, in memory fixed after the first round.

use std::hash::BuildHasher;
use std::net::IpAddr;

use rustc_hash::FxBuildHasher;

use super::respond::Outcome;
use crate::answer::Snapshot;

/// Slots per thread (a power of two).
const SLOTS: usize = 256;
/// The longest query (after its ID) worth keeping; a longer one is answered afresh.
const MAX_KEY: usize = 300;

/// One thread's replies of the current generation.
pub(crate) struct ReplyCache {
    generation: u64,
    slots: Vec<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The query after its ID.
    key: Vec<u8>,
    /// The reply, whose first two bytes (an ID) are replaced on each use.
    reply: Vec<u8>,
    outcome: Option<Outcome>,
}

impl ReplyCache {
    pub(crate) fn new() -> Self {
        Self {
            generation: u64::MAX,
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }

    /// Answers the datagram `raw` from `client` into `out`: from a kept reply when there is
    /// one for its bytes in `snapshot`'s generation and the client may ask, else by `answer`
    /// (whose reply is kept when reusable).
    pub(crate) fn answer(
        &mut self,
        snapshot: &Snapshot,
        raw: &[u8],
        client: IpAddr,
        out: &mut Vec<u8>,
        answer: impl FnOnce(&mut Vec<u8>) -> Option<Outcome>,
    ) -> Option<Outcome> {
        if self.generation != snapshot.generation {
            self.generation = snapshot.generation;
            for slot in &mut self.slots {
                slot.outcome = None;
            }
        }
        let Some(key) = raw.get(2..).filter(|k| k.len() <= MAX_KEY) else {
            return answer(out);
        };
        let slot = &mut self.slots[(FxBuildHasher.hash_one(key) as usize) & (SLOTS - 1)];
        if let Some(outcome) = slot.outcome
            && slot.key == key
            && snapshot.topology.allows_query(client)
        {
            out.clear();
            out.extend_from_slice(&raw[..2]);
            out.extend_from_slice(&slot.reply[2..]);
            return Some(outcome);
        }
        let outcome = answer(out)?;
        if outcome.reusable && out.len() >= 2 {
            slot.key.clear();
            slot.key.extend_from_slice(key);
            slot.reply.clear();
            slot.reply.extend_from_slice(out);
            slot.outcome = Some(outcome);
        }
        Some(outcome)
    }
}

#[cfg(test)]
mod tests;
