//! Drained hosts, kept across restarts and shared by the instances of a cluster: one
//! `site/host` per line, then `until=<RFC 3339 time>` for a maintenance window that ends by
//! itself, and `stamp=<millis>.<counter>@<instance>`, when and where the change was decided
//! ([`Stamp`]). A line `site/host undrained stamp=...` keeps an undrain, so that an older drain
//! held by an instance that was away cannot come back.
//!
//! Each host's line is a last-writer-wins register: [`Drains::merge`] keeps the entry with the
//! greater stamp, so merging is commutative, associative and idempotent, and instances that
//! have exchanged their tables hold the same one. A line without a stamp (the format before
//! stamps) has [`Stamp::ZERO`]: any stamped change wins over it.
//!
//! Reading is forgiving of damage and loud about it: a line that is not valid (bad bytes, not
//! `site/host`, a bad time or stamp) is dropped and named, every valid line is kept. A file that
//! cannot be read at all is an error for the caller to refuse to start on — serving without it
//! would put every relay under maintenance back into the answers.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::hlc::Stamp;

/// The file name inside `server.state_dir`.
pub const FILE_NAME: &str = "drained-hosts";

/// How long an undrain (or a maintenance window that has ended) is kept after its stamp.
///
/// Kept at all so that an instance that was stopped or cut off when the undrain was made, and
/// still holds the older drain, does not bring that drain back: the undrain's greater stamp
/// beats it when they meet. Kept for a limited time because a host's line is rewritten in place
/// (one line per host ever drained, not per change), yet hosts get renamed and removed; 30 days
/// is far longer than any instance should be away. An instance away for longer may bring back a
/// drain that was undrained meanwhile: the drain event says from where, and `undrain` ends it.
pub const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// One drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// When the drain ends by itself; `None` lasts until an undrain.
    pub until: Option<SystemTime>,
}

/// A host's register: its drain (`None`: undrained) and the stamp of the change that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The drain, or `None` for an undrain (and a maintenance window that has ended).
    pub drain: Option<Drain>,
    /// When and where the change was decided.
    pub stamp: Stamp,
}

impl Entry {
    /// The drain in force at `now`: `None` for an undrain and a window that has ended.
    pub fn active(&self, now: SystemTime) -> Option<Drain> {
        self.drain.filter(|d| d.until.is_none_or(|u| u > now))
    }

    /// Whether this entry wins over `other`: the greater stamp; on equal stamps (a window
    /// ended on one instance, not yet on another) the undrain, then the later end, so that
    /// every instance picks the same.
    fn beats(&self, other: &Entry) -> bool {
        let rank = |e: &Entry| match e.drain {
            None => (2, None),
            Some(Drain { until: None }) => (1, None),
            Some(Drain { until }) => (0, until),
        };
        (&self.stamp, rank(self)) > (&other.stamp, rank(other))
    }

    /// Whether it is an undrain (or an ended window) older than [`TOMBSTONE_LIFETIME`] at `now`:
    /// nothing needs it any more.
    fn forgotten(&self, now: SystemTime) -> bool {
        self.active(now).is_none() && self.stamp.time() + TOMBSTONE_LIFETIME < now
    }
}

/// Every host's register, by lower-case `site/host`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drains {
    entries: BTreeMap<String, Entry>,
}

impl Drains {
    /// Reads the file at `path` (never through a link, only a regular file): a missing file
    /// is no drains; lines that are not valid are dropped and described in the second value.
    pub fn read(path: &Path) -> io::Result<(Self, Vec<String>)> {
        Ok(super::file::read(path)?.map_or_else(Default::default, |b| Self::parse(&b)))
    }

    /// Parses the file's bytes (or a peer's table, which has the same form), keeping every
    /// valid line; two lines of one host are merged. A dropped line is described by its number
    /// and length, never its text: a file put in this one's place may hold secrets, and a
    /// peer's table is the network's text.
    pub fn parse(bytes: &[u8]) -> (Self, Vec<String>) {
        let mut drains = Self::default();
        let mut dropped = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let len = raw.len();
            let Ok(line) = std::str::from_utf8(raw) else {
                dropped.push(format!("line {n} ({len} bytes): not UTF-8 text"));
                continue;
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((key, entry)) => {
                    drains.put(key, entry);
                }
                Err(problem) => dropped.push(format!("line {n} ({len} bytes): {problem}")),
            }
        }
        (drains, dropped)
    }

    /// The drain of `key` (`site/host`, any letter case) in force at `now`.
    pub fn active(&self, key: &str, now: SystemTime) -> Option<Drain> {
        self.entries.get(&key.to_ascii_lowercase())?.active(now)
    }

    /// The register of `key` (`site/host`, any letter case), undrains included.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(&key.to_ascii_lowercase())
    }

    /// Takes `entry` for `key` if it wins over the one held (see [`Entry`]); whether it did. An
    /// undrain too old to matter any more ([`TOMBSTONE_LIFETIME`] at `now`) is not taken.
    pub fn merge(&mut self, key: &str, entry: Entry, now: SystemTime) -> bool {
        if entry.forgotten(now) {
            return false;
        }
        self.put(key.to_ascii_lowercase(), entry)
    }

    fn put(&mut self, key: String, entry: Entry) -> bool {
        match self.entries.get(&key) {
            Some(held) if !entry.beats(held) => false,
            _ => {
                self.entries.insert(key, entry);
                true
            }
        }
    }

    /// Every register, by key, undrains included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Every drain in force at `now`, by key.
    pub fn active_drains(&self, now: SystemTime) -> impl Iterator<Item = (&str, Drain)> {
        self.iter()
            .filter_map(move |(k, e)| e.active(now).map(|d| (k, d)))
    }

    /// The soonest end of a maintenance window not yet [expired](Self::expire), also one whose
    /// time has passed: an end that fell while the health task was busy with something else is
    /// then expired at once, never skipped (which would leave the host drained for good).
    pub fn next_end(&self) -> Option<SystemTime> {
        (self.entries.values()).filter_map(|e| e.drain?.until).min()
    }

    /// Ends the maintenance windows that are over at `now`, returning their keys: each becomes
    /// an undrain with the stamp of the drain it ends, which every instance makes alike.
    pub fn expire(&mut self, now: SystemTime) -> Vec<String> {
        let mut ended = Vec::new();
        for (key, entry) in &mut self.entries {
            if entry.drain.is_some() && entry.active(now).is_none() {
                entry.drain = None;
                ended.push(key.clone());
            }
        }
        ended
    }

    /// Forgets the undrains older than [`TOMBSTONE_LIFETIME`] at `now`; how many.
    pub fn purge(&mut self, now: SystemTime) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| !e.forgotten(now));
        before - self.entries.len()
    }

    /// The file's text: the same for the same registers, whatever order they came in.
    pub fn text(&self) -> String {
        let mut text = String::from(
            "# hosts drained with `smarthostd drain`: site/host, until=<time> for a timed drain, \
             stamp=<when>@<instance> of the change; \"undrained\" keeps an undrain for the other instances\n",
        );
        for (key, entry) in &self.entries {
            text.push_str(key);
            match entry.drain {
                None => text.push_str(" undrained"),
                Some(Drain { until: Some(until) }) => {
                    text.push_str(" until=");
                    text.push_str(&humantime::format_rfc3339_seconds(until).to_string());
                }
                Some(Drain { until: None }) => {}
            }
            if entry.stamp != Stamp::ZERO {
                text.push_str(" stamp=");
                text.push_str(&entry.stamp.to_string());
            }
            text.push('\n');
        }
        text
    }
}

fn parse_line(line: &str) -> Result<(String, Entry), &'static str> {
    let mut words = line.split_whitespace();
    let key = words.next().ok_or("empty")?;
    let (site, host) = key.split_once('/').ok_or("not site/host")?;
    if !is_label(site) || !is_label(host) {
        return Err("not site/host");
    }
    let (mut until, mut undrained, mut stamp) = (None, false, None);
    for word in words {
        if let Some(time) = word.strip_prefix("until=") {
            until = Some(humantime::parse_rfc3339_weak(time).map_err(|_| "bad time")?);
        } else if let Some(text) = word.strip_prefix("stamp=") {
            stamp = Some(Stamp::parse(text).ok_or("bad stamp")?);
        } else if word == "undrained" {
            undrained = true;
        } else {
            return Err("unknown field");
        }
    }
    let drain = match (undrained, until) {
        (true, Some(_)) => return Err("an undrain has no end time"),
        (true, None) => None,
        (false, until) => Some(Drain { until }),
    };
    let stamp = stamp.unwrap_or(Stamp::ZERO);
    Ok((key.to_ascii_lowercase(), Entry { drain, stamp }))
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
#[path = "drains_tests.rs"]
mod tests;
