//! Drained hosts, kept across restarts: one `site/host` per line, optionally followed by
//! `until=<RFC 3339 time>` for a maintenance window that ends by itself.
//!
//! Reading is forgiving of damage and loud about it: a line that is not valid (bad bytes, not
//! `site/host`, a bad time) is dropped and named, every valid line is kept. A file that cannot
//! be read at all is an error for the caller to refuse to start on — serving without it would
//! put every relay under maintenance back into the answers.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The file name inside `server.state_dir`.
pub const FILE_NAME: &str = "drained-hosts";

/// One drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// When the drain ends by itself; `None` lasts until an undrain.
    pub until: Option<SystemTime>,
}

/// Every drain, by lower-case `site/host`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drains {
    entries: BTreeMap<String, Drain>,
}

impl Drains {
    /// Reads the file at `path` (never through a link, only a regular file): a missing file
    /// is no drains; lines that are not valid are dropped and described in the second value.
    pub fn read(path: &Path) -> io::Result<(Self, Vec<String>)> {
        Ok(super::file::read(path)?.map_or_else(Default::default, |b| Self::parse(&b)))
    }

    /// Parses the file's bytes, keeping every valid line. A dropped line is described by its
    /// number and length, never its text: a file put in this one's place may hold secrets.
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
                Ok((key, drain)) => {
                    drains.entries.insert(key, drain);
                }
                Err(problem) => dropped.push(format!("line {n} ({len} bytes): {problem}")),
            }
        }
        (drains, dropped)
    }

    /// The drain of `key` (`site/host`, any letter case).
    pub fn get(&self, key: &str) -> Option<Drain> {
        self.entries.get(&key.to_ascii_lowercase()).copied()
    }

    /// Sets or clears the drain of `key`; whether anything changed.
    pub fn set(&mut self, key: &str, drain: Option<Drain>) -> bool {
        let key = key.to_ascii_lowercase();
        match drain {
            Some(d) => self.entries.insert(key, d) != Some(d),
            None => self.entries.remove(&key).is_some(),
        }
    }

    /// Every drain, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Drain)> {
        self.entries.iter().map(|(k, d)| (k.as_str(), *d))
    }

    /// The soonest end of a timed drain.
    pub fn next_end(&self) -> Option<SystemTime> {
        self.entries.values().filter_map(|d| d.until).min()
    }

    /// Removes the drains that have ended by `now`, returning their keys.
    pub fn expire(&mut self, now: SystemTime) -> Vec<String> {
        let ended: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, d)| d.until.is_some_and(|u| u <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &ended {
            self.entries.remove(k);
        }
        ended
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut text = String::from(
            "# hosts drained with `smarthostd drain`: site/host, and until=<time> for a timed drain\n",
        );
        for (key, drain) in &self.entries {
            text.push_str(key);
            if let Some(until) = drain.until {
                text.push_str(" until=");
                text.push_str(&humantime::format_rfc3339_seconds(until).to_string());
            }
            text.push('\n');
        }
        text
    }
}

fn parse_line(line: &str) -> Result<(String, Drain), &'static str> {
    let mut words = line.split_whitespace();
    let key = words.next().ok_or("empty")?;
    let (site, host) = key.split_once('/').ok_or("not site/host")?;
    if !is_label(site) || !is_label(host) {
        return Err("not site/host");
    }
    let mut drain = Drain { until: None };
    for word in words {
        let time = word.strip_prefix("until=").ok_or("unknown field")?;
        drain.until = Some(humantime::parse_rfc3339_weak(time).map_err(|_| "bad time")?);
    }
    Ok((key.to_ascii_lowercase(), drain))
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn drains_round_trip_through_the_text_with_their_end_times() {
        let mut d = Drains::default();
        let until = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert!(d.set("Oxford/Mail1", Some(Drain { until: None })));
        assert!(d.set("cambridge/mail2", Some(Drain { until: Some(until) })));
        assert!(
            !d.set("oxford/mail1", Some(Drain { until: None })),
            "no change"
        );
        let (again, dropped) = Drains::parse(d.text().as_bytes());
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(again, d);
        assert_eq!(again.get("OXFORD/MAIL1"), Some(Drain { until: None }));
        assert_eq!(again.next_end(), Some(until));
    }

    #[test]
    fn a_damaged_file_keeps_its_valid_lines_and_names_the_rest() {
        let bytes =
            b"oxford/mail1\n\xff\xfe/x\nnot a key\ncambridge/mail1 until=yesterday\nlondon/mail1\n";
        let (d, dropped) = Drains::parse(bytes);
        let keys: Vec<&str> = d.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["london/mail1", "oxford/mail1"]);
        assert_eq!(
            dropped,
            [
                "line 2 (4 bytes): not UTF-8 text",
                "line 3 (9 bytes): not site/host",
                "line 4 (31 bytes): bad time",
            ]
        );
    }

    #[test]
    fn timed_drains_expire() {
        let mut d = Drains::default();
        let t = SystemTime::now();
        d.set("a/b", Some(Drain { until: Some(t) }));
        d.set("a/c", Some(Drain { until: None }));
        assert_eq!(d.expire(t - Duration::from_secs(1)), Vec::<String>::new());
        assert_eq!(d.expire(t), vec!["a/b".to_string()]);
        assert_eq!(d.iter().count(), 1);
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
