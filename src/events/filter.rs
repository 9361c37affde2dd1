//! Choosing events: by site, host and time, with `since` given as an RFC 3339 time or as a
//! duration back from now (`1h`, `30m`), as operators type it.

use std::time::{Duration, SystemTime};

use super::Event;

/// Which events to list; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Events at or after this time.
    pub since: Option<SystemTime>,
    /// Events of this site (any letter case); events of no site (reloads, starts) are left out.
    pub site: Option<String>,
    /// Events of hosts of this name (any letter case), in any site unless `site` is given.
    pub host: Option<String>,
}

impl Filter {
    /// Whether `event` is chosen.
    pub fn matches(&self, event: &Event) -> bool {
        self.since.is_none_or(|since| event.time >= since)
            && self.site.as_deref().is_none_or(|s| event.is_of_site(s))
            && self.host.as_deref().is_none_or(|h| {
                event
                    .host
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(h))
            })
    }
}

/// Why a `since` was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "since {0:?}: give an RFC 3339 time (2025-06-01T03:00:00Z, 2025-06-01T05:00:00+02:00) or a duration back from now (90m, 12h, 2d)"
)]
pub(crate) struct BadSince(pub String);

/// The start time `text` means at `now`: an RFC 3339 time, or a duration back from `now`.
pub(crate) fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, BadSince> {
    let text = text.trim();
    if let Ok(time) = parse_time(text) {
        return Ok(time);
    }
    let back: Duration = humantime::parse_duration(text).map_err(|_| BadSince(text.to_string()))?;
    Ok(now.checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// An RFC 3339 time, in UTC (`Z`) or with a numeric offset (`+02:00`).
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time");
    let (local, offset) = split_offset(text);
    let time = humantime::parse_rfc3339_weak(local).map_err(|_| bad())?;
    match offset {
        0 => Ok(time),
        east if east > 0 => time
            .checked_sub(Duration::from_secs(east.unsigned_abs()))
            .ok_or_else(bad),
        west => time
            .checked_add(Duration::from_secs(west.unsigned_abs()))
            .ok_or_else(bad),
    }
}

/// The time without its zone, and the zone's offset east of UTC in seconds.
fn split_offset(text: &str) -> (&str, i64) {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return (local, 0);
    }
    let b = text.as_bytes();
    if b.len() > 6 && b[b.len() - 3] == b':' && matches!(b[b.len() - 6], b'+' | b'-') {
        let hours = text[b.len() - 5..b.len() - 3].parse::<i64>();
        let minutes = text[b.len() - 2..].parse::<i64>();
        if let (Ok(h), Ok(m)) = (hours, minutes)
            && h < 24
            && m < 60
        {
            let sign = if b[b.len() - 6] == b'+' { 1 } else { -1 };
            return (&text[..b.len() - 6], sign * (h * 3600 + m * 60));
        }
    }
    (text, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn since_takes_rfc3339_times_with_any_offset_and_durations_back_from_now() {
        let now = at(1_750_000_000);
        let utc = parse_since("2025-06-01T03:00:00Z", now).unwrap();
        assert_eq!(utc, at(1_748_746_800));
        assert_eq!(parse_since("2025-06-01T05:00:00+02:00", now).unwrap(), utc);
        assert_eq!(parse_since("2025-05-31T22:30:00-04:30", now).unwrap(), utc);
        assert_eq!(
            parse_since("2025-06-01T03:00:00.250Z", now).unwrap(),
            utc + Duration::from_millis(250)
        );
        assert_eq!(parse_since("1h", now).unwrap(), at(1_750_000_000 - 3600));
        assert_eq!(parse_since(" 90m ", now).unwrap(), at(1_750_000_000 - 5400));
        assert_eq!(parse_since("2d", now).unwrap(), at(1_750_000_000 - 172_800));
        for bad in ["yesterday", "", "1 fortnight", "2025-13-01T00:00:00Z"] {
            assert!(parse_since(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_match_site_and_host_in_any_case_and_times_from_since_on() {
        let a: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let ox = Event::state("oxford", "mail1", a, "up", "down", "x").at(at(100));
        let cam = Event::state("cambridge", "mail1", a, "up", "down", "x").at(at(200));
        let mode = Event::mode("oxford", "local", "failsafe", "x").at(at(300));
        let reload = Event::reload("ok").at(at(400));
        let all = [&ox, &cam, &mode, &reload];
        let chosen = |f: Filter| -> Vec<SystemTime> {
            all.iter()
                .filter(|e| f.matches(e))
                .map(|e| e.time)
                .collect()
        };
        assert_eq!(chosen(Filter::default()).len(), 4);
        let site = Filter {
            site: Some("OXFORD".into()),
            ..Filter::default()
        };
        assert_eq!(chosen(site), [at(100), at(300)]);
        let host = Filter {
            host: Some("Mail1".into()),
            ..Filter::default()
        };
        assert_eq!(chosen(host), [at(100), at(200)]);
        let since = Filter {
            since: Some(at(200)),
            ..Filter::default()
        };
        assert_eq!(chosen(since), [at(200), at(300), at(400)]);
    }
}
