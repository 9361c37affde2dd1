//! A key's timing metadata, as BIND writes it (`Publish: 20250101000000`, UTC): when it enters
//! the DNSKEY RRset, when it starts and stops signing, when it leaves.
//!
//! Times are whole seconds since the Unix epoch (`u64`), taken as arguments, never read from a
//! clock here: the rules below are pure and tested with explicit times.

use std::fmt;

/// Publish, Activate, Inactive and Delete of one key; `None` where the files say nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// When the key was made (informational).
    pub created: Option<u64>,
    /// From then on the key is in the DNSKEY RRset.
    pub publish: Option<u64>,
    /// From then on the key signs.
    pub activate: Option<u64>,
    /// From then on the key no longer signs.
    pub inactive: Option<u64>,
    /// From then on the key is no longer in the DNSKEY RRset.
    pub delete: Option<u64>,
}

impl Timing {
    /// Whether the key is in the DNSKEY RRset at `now`: Publish <= now < Delete (no Publish:
    /// published from the start).
    pub fn published(&self, now: u64) -> bool {
        self.publish.is_none_or(|t| t <= now) && self.delete.is_none_or(|t| now < t)
    }

    /// Whether the key signs at `now`: Activate <= now < Inactive (no Activate: from the start).
    pub fn active(&self, now: u64) -> bool {
        self.activate.is_none_or(|t| t <= now) && self.inactive.is_none_or(|t| now < t)
    }

    /// The first of Publish, Activate, Inactive and Delete after `now`: when the DNSKEY RRset or
    /// the signatures must change.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        [self.publish, self.activate, self.inactive, self.delete]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// Sets the field named `field` (`Publish`, ...) from a BIND time; `Ok(false)` for a field
    /// that is not timing.
    pub fn set(&mut self, field: &str, value: &str) -> Result<bool, String> {
        let slot = match field {
            "Created" => &mut self.created,
            "Publish" => &mut self.publish,
            "Activate" => &mut self.activate,
            "Inactive" => &mut self.inactive,
            "Delete" => &mut self.delete,
            _ => return Ok(false),
        };
        let stamp = value.split_whitespace().next().unwrap_or_default();
        *slot =
            Some(parse_stamp(stamp).ok_or_else(|| {
                format!("{field}: {stamp:?} is not a time as YYYYMMDDHHMMSS (UTC)")
            })?);
        Ok(true)
    }

    /// Each set field as `(name, time)`, in BIND's order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("Created", self.created),
            ("Publish", self.publish),
            ("Activate", self.activate),
            ("Inactive", self.inactive),
            ("Delete", self.delete),
        ]
        .into_iter()
        .filter_map(|(n, t)| Some((n, t?)))
    }

    /// This timing with every field `other` sets taken from `other` (the `.private` file's
    /// metadata wins over the `.key` file's comments).
    pub fn overridden_by(self, other: &Timing) -> Timing {
        Timing {
            created: other.created.or(self.created),
            publish: other.publish.or(self.publish),
            activate: other.activate.or(self.activate),
            inactive: other.inactive.or(self.inactive),
            delete: other.delete.or(self.delete),
        }
    }
}

/// A time as BIND writes it: `YYYYMMDDHHMMSS`, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(pub u64);

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86400) as i64;
        let secs = self.0 % 86400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Parses `YYYYMMDDHHMMSS` (UTC) into seconds since the epoch.
pub(crate) fn parse_stamp(s: &str) -> Option<u64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, sec) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    if d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days as u64 * 86400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(sec))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil and civil-from-days (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_times_round_trip() {
        assert_eq!(parse_stamp("19700101000000"), Some(0));
        assert_eq!(parse_stamp("20261207174453"), Some(1_796_665_493));
        assert_eq!(Stamp(1_796_665_493).to_string(), "20261207174453");
        assert_eq!(
            Stamp(parse_stamp("20240229235959").unwrap()).to_string(),
            "20240229235959"
        );
        for bad in [
            "2026120717445",
            "20261307000000",
            "20230229000000",
            "2026120717445x",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn published_and_active_follow_the_metadata() {
        let t = Timing {
            publish: Some(100),
            activate: Some(200),
            inactive: Some(300),
            delete: Some(400),
            ..Timing::default()
        };
        let states: Vec<(bool, bool)> = [50, 100, 200, 299, 300, 399, 400]
            .iter()
            .map(|&now| (t.published(now), t.active(now)))
            .collect();
        assert_eq!(
            states,
            [
                (false, false),
                (true, false),
                (true, true),
                (true, true),
                (true, false),
                (true, false),
                (false, false)
            ]
        );
        assert_eq!(t.next_event(150), Some(200));
        assert_eq!(t.next_event(400), None);
        let none = Timing::default();
        assert!(none.published(0) && none.active(0));
        assert_eq!(none.next_event(0), None);
    }

    #[test]
    fn the_private_files_metadata_wins() {
        let mut key = Timing::default();
        key.set("Publish", "20260101000000 (Thu Jan  1 00:00:00 2026)")
            .unwrap();
        key.set("Activate", "20260101000000").unwrap();
        let mut private = Timing::default();
        private.set("Activate", "20260201000000").unwrap();
        let t = key.overridden_by(&private);
        assert_eq!(t.publish, parse_stamp("20260101000000"));
        assert_eq!(t.activate, parse_stamp("20260201000000"));
        assert_eq!(key.set("Revoke", "20260101000000"), Ok(false));
        assert!(key.set("Delete", "soon").is_err());
    }
}
