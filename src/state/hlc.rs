//! Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): every change to a
//! host's drain is stamped with wall-clock milliseconds, a counter and the name of the
//! instance that made it, and the greater stamp wins everywhere.
//!
//! Why not the wall clock alone: two instances whose clocks differ by seconds would then let
//! the one running ahead win even against a change made *after* it, by someone who saw it. An
//! HLC never runs behind any stamp it has seen: every stamp received from a peer is
//! [`observe`](Hlc::observe)d, and the next local stamp is greater than all of them (same
//! milliseconds, a higher counter, when the local clock is behind). So a change made after
//! seeing another always wins, however far apart the clocks are; only changes made without
//! seeing each other (within the same second or two, on two instances) are ordered by the
//! clocks, and then by the instance names, the same way everywhere.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A stamp more than this far ahead of this instance's clock is refused: a peer whose clock
/// is wrong by more than a day would otherwise drag every stamp after it into the future.
pub const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// The longest instance name a stamp carries.
const MAX_ORIGIN: usize = 100;

/// One reading of the clock: compared by milliseconds, then counter, then origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Stamp {
    /// Wall-clock milliseconds since the Unix epoch (as advanced by stamps seen).
    pub millis: u64,
    /// Orders stamps of the same millisecond.
    pub counter: u32,
    /// The instance that made the change: its admin address as its peers name it. Empty for
    /// [`Stamp::ZERO`].
    pub origin: String,
}

impl Stamp {
    /// The stamp of a drain written before drains were stamped: older than any other.
    pub const ZERO: Stamp = Stamp {
        millis: 0,
        counter: 0,
        origin: String::new(),
    };

    /// The wall-clock time of the stamp.
    pub fn time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.millis)
    }

    /// Reads `millis.counter@origin`; `None` unless it is exactly that, with an origin of
    /// letters, digits and `.:[]_-` (an address and port, a host name).
    pub fn parse(text: &str) -> Option<Self> {
        let (clock, origin) = text.split_once('@')?;
        let (millis, counter) = clock.split_once('.')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(millis) || !digits(counter) || !valid_origin(origin) {
            return None;
        }
        Some(Self {
            millis: millis.parse().ok()?,
            counter: counter.parse().ok()?,
            origin: origin.to_string(),
        })
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.millis, self.counter, self.origin)
    }
}

/// Whether `origin` may name an instance in a stamp (it reaches files, logs and pages).
pub fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= MAX_ORIGIN
        && (origin.bytes()).all(|b| b.is_ascii_alphanumeric() || b".:[]_-".contains(&b))
}

/// Milliseconds since the epoch of `t` (0 before it).
fn millis_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a stamp from a peer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stamped {ahead:?} ahead of this clock (more than {MAX_AHEAD:?}): is that clock right?")]
pub struct TooFarAhead {
    /// How far ahead of this instance's clock.
    pub ahead: Duration,
}

/// The clock of one instance. Pure: the wall-clock time is an argument.
#[derive(Debug, Clone)]
pub struct Hlc {
    millis: u64,
    counter: u32,
    origin: String,
}

impl Hlc {
    /// A clock that has seen nothing, for the instance named `origin`.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            millis: 0,
            counter: 0,
            origin: origin.into(),
        }
    }

    /// The name stamps of this clock carry.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A stamp for a change made here at `wall`: greater than every stamp made or seen before.
    pub fn now(&mut self, wall: SystemTime) -> Stamp {
        let wall = millis_of(wall);
        if wall > self.millis {
            self.millis = wall;
            self.counter = 0;
        } else {
            self.tick();
        }
        Stamp {
            millis: self.millis,
            counter: self.counter,
            origin: self.origin.clone(),
        }
    }

    /// Takes in a stamp seen from a peer at `wall`, so that every later local stamp is greater;
    /// refuses one too far ahead of `wall` ([`MAX_AHEAD`]).
    pub fn observe(&mut self, seen: &Stamp, wall: SystemTime) -> Result<(), TooFarAhead> {
        let now = millis_of(wall);
        let ahead = seen.millis.saturating_sub(now);
        if Duration::from_millis(ahead) > MAX_AHEAD {
            return Err(TooFarAhead {
                ahead: Duration::from_millis(ahead),
            });
        }
        let top = self.millis.max(seen.millis).max(now);
        let counter = match (top == self.millis, top == seen.millis) {
            (true, true) => self.counter.max(seen.counter),
            (true, false) => self.counter,
            (false, true) => seen.counter,
            (false, false) => {
                self.millis = top;
                self.counter = 0;
                return Ok(());
            }
        };
        // The next local stamp ticks past it; observing alone need not.
        self.millis = top;
        self.counter = counter;
        Ok(())
    }

    /// One step past the last reading within its millisecond; a counter that has run out (four
    /// billion changes in one millisecond) moves to the next millisecond instead.
    fn tick(&mut self) {
        match self.counter.checked_add(1) {
            Some(c) => self.counter = c,
            None => {
                self.millis += 1;
                self.counter = 0;
            }
        }
    }
}

/// The clock of this instance, shared by the health task (drains) and the peer task (reloads).
#[derive(Debug, Clone)]
pub struct Clock(Arc<Mutex<Hlc>>);

impl Clock {
    /// A clock whose stamps carry `origin`, this instance's name.
    pub fn new(origin: impl Into<String>) -> Self {
        Self(Arc::new(Mutex::new(Hlc::new(origin))))
    }

    /// A stamp for a change made now.
    pub fn now(&self) -> Stamp {
        self.0.lock().expect("clock lock").now(SystemTime::now())
    }

    /// Takes in a stamp seen from a peer.
    pub fn observe(&self, seen: &Stamp) -> Result<(), TooFarAhead> {
        (self.0.lock().expect("clock lock")).observe(seen, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn stamps_follow_the_wall_clock_and_never_repeat() {
        let mut c = Hlc::new("a");
        let s1 = c.now(at(1_000));
        let s2 = c.now(at(1_000));
        let s3 = c.now(at(999)); // the clock was set back
        let s4 = c.now(at(1_005));
        assert_eq!((s1.millis, s1.counter), (1_000, 0));
        assert_eq!((s2.millis, s2.counter), (1_000, 1));
        assert_eq!((s3.millis, s3.counter), (1_000, 2));
        assert_eq!((s4.millis, s4.counter), (1_005, 0));
        assert!(s1 < s2 && s2 < s3 && s3 < s4);
    }

    #[test]
    fn a_change_made_after_seeing_another_wins_though_its_clock_is_seconds_behind() {
        // b's clock runs 5 s ahead of a's.
        let mut a = Hlc::new("a");
        let mut b = Hlc::new("b");
        let drain = b.now(at(105_000));
        // a sees b's drain at its own 100 s, and undrains at its own 100.2 s.
        a.observe(&drain, at(100_000)).unwrap();
        let undrain = a.now(at(100_200));
        assert!(undrain > drain, "{undrain} must beat {drain}");
        assert_eq!((undrain.millis, undrain.counter), (105_000, 1));
        // And the other way round: b, ahead, answers a change of a's.
        b.observe(&undrain, at(105_300)).unwrap();
        let again = b.now(at(105_300));
        assert!(again > undrain);
    }

    #[test]
    fn observing_keeps_the_greatest_and_the_next_stamp_passes_it() {
        let mut c = Hlc::new("c");
        c.now(at(50));
        let seen = Stamp {
            millis: 50,
            counter: 7,
            origin: "z".into(),
        };
        c.observe(&seen, at(40)).unwrap();
        let next = c.now(at(40));
        assert_eq!((next.millis, next.counter), (50, 8));
        assert!(next > seen);
        // A stamp behind the wall clock changes nothing: the wall clock is ahead anyway.
        c.observe(&Stamp::ZERO, at(60)).unwrap();
        assert_eq!(c.now(at(60)).millis, 60);
    }

    #[test]
    fn concurrent_changes_are_ordered_by_time_then_counter_then_origin() {
        let a = Stamp {
            millis: 10,
            counter: 0,
            origin: "10.0.0.53:8053".into(),
        };
        let b = Stamp {
            origin: "10.0.1.53:8053".into(),
            ..a.clone()
        };
        assert!(a < b);
        assert!(Stamp::ZERO < a);
    }

    #[test]
    fn a_stamp_more_than_a_day_ahead_is_refused_and_changes_nothing() {
        let mut c = Hlc::new("c");
        let now = 1_000_000_000;
        let far = Stamp {
            millis: now + MAX_AHEAD.as_millis() as u64 + 1,
            counter: 0,
            origin: "x".into(),
        };
        assert!(c.observe(&far, at(now)).is_err());
        assert_eq!(c.now(at(now)).millis, now);
        let near = Stamp {
            millis: now + 60_000,
            ..far
        };
        c.observe(&near, at(now)).unwrap();
        assert_eq!(c.now(at(now)).millis, now + 60_000);
    }

    #[test]
    fn stamps_read_back_what_they_write_and_nothing_else() {
        let s = Stamp {
            millis: 1_718_000_000_123,
            counter: 4,
            origin: "[2001:db8::53]:8053".into(),
        };
        assert_eq!(s.to_string(), "1718000000123.4@[2001:db8::53]:8053");
        assert_eq!(Stamp::parse(&s.to_string()), Some(s));
        for bad in [
            "",
            "1.2",
            "1@a",
            ".1@a",
            "1.@a",
            "1.2@",
            "-1.2@a",
            "1.2@a b",
            "1.2@a\u{1b}[31m",
            "1.2@a@b",
            "99999999999999999999999.0@a",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Stamp::parse(&format!("1.2@{}", "a".repeat(101))), None);
    }

    #[test]
    fn a_counter_that_runs_out_moves_to_the_next_millisecond() {
        let mut c = Hlc::new("c");
        c.observe(
            &Stamp {
                millis: 10,
                counter: u32::MAX,
                origin: "x".into(),
            },
            at(10),
        )
        .unwrap();
        let s = c.now(at(10));
        assert_eq!((s.millis, s.counter), (11, 0));
    }
}
