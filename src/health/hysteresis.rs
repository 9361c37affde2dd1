//! Up/down decisions with flap protection: `fall` consecutive failures take an address down,
//! `rise` consecutive successes bring it back. Pure; time comes in as arguments.

use std::time::{Duration, Instant};

use crate::answer::State;

/// The thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    /// Consecutive passed probes that bring a down address back up (`probe.rise`).
    pub rise: u32,
    /// Consecutive failed probes that take an up address down (`probe.fall`).
    pub fall: u32,
}

impl Thresholds {
    /// The thresholds for a failure a DANE sender refuses on its very next connection: one
    /// takes the address down. Flap protection is for failures a retry may not meet (a lost
    /// packet, a restart); such a failure is met by every sender, and an impostor that answers
    /// only now and then would otherwise never reach `fall` failures in a row. Coming back
    /// still takes `rise` passes.
    pub(crate) fn refusing(self) -> Self {
        Self { fall: 1, ..self }
    }
}

/// One address's verdict and the streak of results that disagree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hysteresis {
    state: State,
    /// Consecutive results against the current state.
    streak: u32,
    /// When the state last changed (or the address was first seen).
    since: Instant,
}

/// A change of verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    /// The verdict before.
    pub from: State,
    /// The verdict after.
    pub to: State,
    /// How many consecutive results it took.
    pub count: u32,
}

impl Hysteresis {
    /// An address with no verdict yet (served as up).
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            state: State::Unknown,
            streak: 0,
            since: now,
        }
    }

    /// An address whose verdict is given.
    #[cfg(test)]
    pub(crate) fn with_state(state: State, since: Instant) -> Self {
        Self {
            state,
            streak: 0,
            since,
        }
    }

    /// The verdict now.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// When the current state began.
    pub(crate) fn since(&self) -> Instant {
        self.since
    }

    /// Whether the last result disagreed with the state: a transition may be under way, and the
    /// next probe should come at once to confirm or dismiss it.
    pub(crate) fn pending(&self) -> bool {
        self.streak > 0
    }

    /// Takes one probe result. The first result of an address with no verdict decides it at
    /// once: there is no history to protect, and the first answers should reflect health.
    pub(crate) fn observe(&mut self, ok: bool, t: Thresholds, now: Instant) -> Option<Transition> {
        let target = if ok { State::Up } else { State::Down };
        if self.state == State::Unknown {
            return Some(self.flip(target, 1, now));
        }
        if self.state == target {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if ok { t.rise } else { t.fall };
        if self.streak >= needed {
            let count = self.streak;
            return Some(self.flip(target, count, now));
        }
        None
    }

    fn flip(&mut self, to: State, count: u32, now: Instant) -> Transition {
        let from = self.state;
        self.state = to;
        self.streak = 0;
        self.since = now;
        Transition { from, to, count }
    }

    /// How long the current state has held at `now`.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { rise: 2, fall: 2 };

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn the_first_result_decides_an_unknown_address() {
        let t0 = Instant::now();
        let mut h = Hysteresis::new(t0);
        let tr = h.observe(false, T, at(t0, 1)).unwrap();
        assert_eq!((tr.from, tr.to), (State::Unknown, State::Down));
        assert_eq!(h.since(), at(t0, 1));
        let mut h = Hysteresis::new(t0);
        assert_eq!(h.observe(true, T, t0).unwrap().to, State::Up);
    }

    #[test]
    fn one_lost_probe_never_takes_an_address_down() {
        let t0 = Instant::now();
        let mut h = Hysteresis::with_state(State::Up, t0);
        assert_eq!(h.observe(false, T, at(t0, 2)), None);
        assert!(h.pending());
        assert_eq!(h.observe(true, T, at(t0, 3)), None);
        assert!(!h.pending());
        assert_eq!(h.state(), State::Up);
        assert_eq!(h.since(), t0);
    }

    #[test]
    fn fall_consecutive_failures_take_it_down_and_rise_successes_bring_it_back() {
        let t0 = Instant::now();
        let mut h = Hysteresis::with_state(State::Up, t0);
        assert_eq!(h.observe(false, T, at(t0, 2)), None);
        let down = h.observe(false, T, at(t0, 3)).unwrap();
        assert_eq!(
            (down.from, down.to, down.count),
            (State::Up, State::Down, 2)
        );
        assert_eq!(h.age(at(t0, 10)), Duration::from_secs(7));
        assert_eq!(
            h.observe(false, T, at(t0, 5)),
            None,
            "still down: no transition"
        );
        assert_eq!(h.observe(true, T, at(t0, 7)), None);
        assert!(h.pending());
        let up = h.observe(true, T, at(t0, 8)).unwrap();
        assert_eq!((up.from, up.to), (State::Down, State::Up));
    }

    #[test]
    fn a_streak_broken_by_an_agreeing_result_starts_over() {
        let t0 = Instant::now();
        let t = Thresholds { rise: 3, fall: 3 };
        let mut h = Hysteresis::with_state(State::Down, t0);
        h.observe(true, t, t0);
        h.observe(true, t, t0);
        h.observe(false, t, t0);
        h.observe(true, t, t0);
        h.observe(true, t, t0);
        assert_eq!(h.state(), State::Down);
        assert!(h.observe(true, t, t0).is_some());
    }

    #[test]
    fn a_refusal_takes_an_address_down_at_once_and_an_intermittent_impostor_keeps_it_down() {
        let t0 = Instant::now();
        let t = Thresholds { rise: 2, fall: 3 };
        let mut h = Hysteresis::with_state(State::Up, t0);
        // Alternating with a passing relay, plain failures never reach `fall` in a row.
        for _ in 0..5 {
            assert_eq!(h.observe(false, t, t0), None);
            assert_eq!(h.observe(true, t, t0), None);
        }
        let down = h.observe(false, t.refusing(), at(t0, 1)).unwrap();
        assert_eq!((down.to, down.count), (State::Down, 1));
        for _ in 0..5 {
            assert_eq!(h.observe(true, t, t0), None, "one pass is not `rise`");
            assert_eq!(h.observe(false, t.refusing(), t0), None);
        }
        assert_eq!(h.state(), State::Down);
        assert!(h.observe(true, t, t0).is_none());
        assert_eq!(h.observe(true, t, t0).unwrap().to, State::Up);
    }

    #[test]
    fn thresholds_of_one_flip_on_every_disagreeing_result() {
        let t0 = Instant::now();
        let t = Thresholds { rise: 1, fall: 1 };
        let mut h = Hysteresis::with_state(State::Up, t0);
        assert!(h.observe(false, t, t0).is_some());
        assert!(h.observe(true, t, t0).is_some());
    }
}
