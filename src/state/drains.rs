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
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn stamp(secs: u64, counter: u32, origin: &str) -> Stamp {
        Stamp {
            millis: secs * 1000,
            counter,
            origin: origin.into(),
        }
    }

    fn drained(until: Option<u64>, s: Stamp) -> Entry {
        Entry {
            drain: Some(Drain {
                until: until.map(at),
            }),
            stamp: s,
        }
    }

    fn undrained(s: Stamp) -> Entry {
        Entry {
            drain: None,
            stamp: s,
        }
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn registers_round_trip_through_the_text_with_end_times_stamps_and_undrains() {
        let mut d = Drains::default();
        let now = at(NOW);
        assert!(d.merge("Oxford/Mail1", drained(None, stamp(NOW, 0, "a:1")), now));
        assert!(d.merge(
            "cambridge/mail2",
            drained(Some(NOW + 60), stamp(NOW, 1, "a:1")),
            now
        ));
        assert!(d.merge("london/mail1", undrained(stamp(NOW, 2, "[::1]:8053")), now));
        let (again, dropped) = Drains::parse(d.text().as_bytes());
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(again, d);
        assert_eq!(
            again.active("OXFORD/MAIL1", now),
            Some(Drain { until: None })
        );
        assert_eq!(again.active("london/mail1", now), None);
        assert_eq!(again.next_end(), Some(at(NOW + 60)));
        assert!(
            d.text().contains("london/mail1 undrained stamp="),
            "{}",
            d.text()
        );
    }

    #[test]
    fn the_format_before_stamps_reads_as_stamp_zero_and_any_stamped_change_wins() {
        let (mut d, dropped) =
            Drains::parse(b"# old\noxford/mail1\ncambridge/mail1 until=2030-01-01T00:00:00Z\n");
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(d.entry("oxford/mail1").unwrap().stamp, Stamp::ZERO);
        assert!(d.merge("oxford/mail1", undrained(stamp(1, 0, "b:1")), at(2)));
        assert_eq!(d.active("oxford/mail1", at(2)), None);
        assert!(
            d.text()
                .contains("cambridge/mail1 until=2030-01-01T00:00:00Z\n")
        );
    }

    #[test]
    fn the_greater_stamp_wins_whatever_the_order_merges_come_in() {
        let now = at(NOW);
        let changes = [
            drained(None, stamp(NOW, 0, "a:1")),
            undrained(stamp(NOW, 1, "b:1")),
            drained(Some(NOW + 600), stamp(NOW - 5, 9, "c:1")),
        ];
        let mut seen = Vec::new();
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]] {
            let mut d = Drains::default();
            for i in order {
                d.merge("oxford/mail1", changes[i].clone(), now);
                // Idempotent: the same change again changes nothing.
                assert!(!d.merge("oxford/mail1", changes[i].clone(), now));
            }
            seen.push(d);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        assert_eq!(seen[0].entry("oxford/mail1"), Some(&changes[1]));
    }

    #[test]
    fn an_ended_window_becomes_an_undrain_with_its_own_stamp_which_wins_a_tie() {
        let s = stamp(NOW, 0, "a:1");
        let mut ended = Drains::default();
        ended.merge("a/b", drained(Some(NOW + 10), s.clone()), at(NOW));
        ended.merge("a/c", drained(None, s.clone()), at(NOW));
        assert_eq!(ended.expire(at(NOW + 9)), Vec::<String>::new());
        // Its time has come and it is not expired yet: still due, so the task expires it.
        assert_eq!(ended.next_end(), Some(at(NOW + 10)));
        assert_eq!(ended.expire(at(NOW + 10)), vec!["a/b".to_string()]);
        assert_eq!(ended.entry("a/b"), Some(&undrained(s.clone())));
        assert_eq!(ended.expire(at(NOW + 11)), Vec::<String>::new());
        assert_eq!(ended.next_end(), None);
        // An instance whose clock is behind still holds the drain: the undrain wins the tie,
        // and the drain does not come back the other way.
        let mut behind = Drains::default();
        behind.merge("a/b", drained(Some(NOW + 10), s.clone()), at(NOW));
        assert!(behind.merge("a/b", undrained(s.clone()), at(NOW + 9)));
        assert!(!ended.merge("a/b", drained(Some(NOW + 10), s), at(NOW + 9)));
    }

    #[test]
    fn old_undrains_are_forgotten_and_not_taken_again_but_old_drains_stay() {
        let now = at(NOW);
        let old = stamp(NOW - 31 * 24 * 3600, 0, "a:1");
        let mut d = Drains::default();
        d.merge("a/old", undrained(old.clone()), now - 2 * DAY);
        d.merge("a/kept", drained(None, old.clone()), now - 2 * DAY);
        d.merge("a/new", undrained(stamp(NOW - 3600, 0, "a:1")), now);
        assert_eq!(d.purge(now), 1);
        let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a/kept", "a/new"]);
        assert!(!d.merge("a/old", undrained(old), now));
    }

    #[test]
    fn a_damaged_file_keeps_its_valid_lines_and_names_the_rest() {
        let bytes = b"oxford/mail1\n\xff\xfe/x\nnot a key\ncambridge/mail1 until=yesterday\n\
            london/mail1\nlondon/mail2 stamp=x\nlondon/mail3 undrained until=2030-01-01T00:00:00Z\n";
        let (d, dropped) = Drains::parse(bytes);
        let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["london/mail1", "oxford/mail1"]);
        assert_eq!(
            dropped,
            [
                "line 2 (4 bytes): not UTF-8 text",
                "line 3 (9 bytes): not site/host",
                "line 4 (31 bytes): bad time",
                "line 6 (20 bytes): bad stamp",
                "line 7 (49 bytes): an undrain has no end time",
            ]
        );
    }

    #[test]
    fn a_missing_file_is_no_drains_and_a_folder_in_its_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Drains::read(&path).unwrap().0, Drains::default());
        std::fs::create_dir(&path).unwrap();
        assert!(Drains::read(&path).is_err());
    }
}
