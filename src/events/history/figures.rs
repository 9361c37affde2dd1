//! What a history is made of — the phases, the window looked at, the timeline's stretches —
//! and the figures summed up from a timeline: share up, transitions, longest outage.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::events::times::{rfc3339, rfc3339_option};

/// The window operators ask about first.
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

/// A relay's or a site's state over a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A relay that may be named in answers.
    Up,
    /// A relay none of whose addresses is up.
    Down,
    /// A relay an operator took out of the answers.
    Drained,
    /// A site whose own relays lead its answer.
    Local,
    /// A site answered with the fallback sites' relays only.
    RemoteOnly,
    /// A site answered with every configured relay, healthy or not.
    Failsafe,
    /// Nothing known: smarthostd not running, or no verdict yet.
    Unknown,
}

impl Phase {
    /// The name in JSON and on the page.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Up => "up",
            Phase::Down => "down",
            Phase::Drained => "drained",
            Phase::Local => "local",
            Phase::RemoteOnly => "remote-only",
            Phase::Failsafe => "failsafe",
            Phase::Unknown => "unknown",
        }
    }

    /// The phase an event's `from`/`to` names (`unknown` for anything else).
    pub fn named(name: &str) -> Self {
        [
            Phase::Up,
            Phase::Down,
            Phase::Drained,
            Phase::Local,
            Phase::RemoteOnly,
            Phase::Failsafe,
        ]
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or(Phase::Unknown)
    }

    /// Counts as up.
    pub fn is_up(self) -> bool {
        matches!(self, Phase::Up | Phase::Local)
    }

    /// Counts as an outage.
    pub fn is_outage(self) -> bool {
        matches!(self, Phase::Down | Phase::RemoteOnly | Phase::Failsafe)
    }
}

/// The stretch of time looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// The first moment looked at.
    pub start: SystemTime,
    /// The last moment looked at: normally now.
    pub end: SystemTime,
}

impl Window {
    /// The [`DAY`] up to `now`.
    pub(crate) fn last_day(now: SystemTime) -> Self {
        Self {
            start: now.checked_sub(DAY).unwrap_or(SystemTime::UNIX_EPOCH),
            end: now,
        }
    }

    fn seconds(&self) -> f64 {
        secs(self.start, self.end)
    }
}

/// One stretch of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The state over the stretch: `up`, `down`, `drained` or `unknown` for a relay; `local`,
    /// `remote-only`, `failsafe` or `unknown` for a site.
    pub state: Phase,
    /// When the stretch began, or the window's start for one begun before it (RFC 3339, UTC,
    /// milliseconds).
    #[serde(with = "rfc3339")]
    pub start: SystemTime,
    /// The stretch's length in seconds.
    pub seconds: f64,
}

/// A relay's or a site's window: figures and timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The window's start (its end is when the report was made).
    #[serde(with = "rfc3339")]
    pub since: SystemTime,
    /// The window's length.
    pub seconds: f64,
    /// Of the time known and not drained, the share spent up; `None` when there was none.
    pub up_share: Option<f64>,
    /// Time up, in seconds: a relay not drained with an address up, or a site whose own relays lead
    /// its answer.
    pub up_seconds: f64,
    /// Time down (a relay) or without local relays in the answer (a site).
    pub down_seconds: f64,
    /// Time drained by an operator, in seconds (always 0 for a site).
    pub drained_seconds: f64,
    /// Changes between known states (an unknown stretch in between is passed over).
    pub transitions: u32,
    /// Outages seen in the window, one still going included.
    pub outages: u32,
    /// Length of the longest outage in seconds, cut to the window; 0 when there was none. Outage
    /// stretches that follow one another (a site from `remote-only` to `failsafe`) are one outage.
    pub longest_outage_seconds: f64,
    /// When the longest outage began (RFC 3339, UTC, milliseconds), or the window's start for one
    /// begun before it; null when there was none.
    #[serde(default, with = "rfc3339_option")]
    pub longest_outage_start: Option<SystemTime>,
    /// The window, stretch by stretch, oldest first.
    pub timeline: Vec<Segment>,
}

/// The figures of a timeline.
pub(super) fn summarize(timeline: Vec<Segment>, window: Window) -> History {
    let total = |wanted: fn(Phase) -> bool| -> f64 {
        timeline
            .iter()
            .filter(|s| wanted(s.state))
            .map(|s| s.seconds)
            // Not `sum()`: an empty sum of floats is -0.0, shown as "-0.00 %".
            .fold(0.0, |a, b| a + b)
    };
    let up_seconds = total(Phase::is_up);
    let down_seconds = total(Phase::is_outage);
    let drained_seconds = total(|p| p == Phase::Drained);
    let mut transitions = 0;
    let mut known: Option<Phase> = None;
    let mut outages = 0;
    let mut longest: Option<(SystemTime, f64)> = None;
    let mut current: Option<(SystemTime, f64)> = None;
    for s in &timeline {
        if s.state != Phase::Unknown {
            if known.is_some_and(|k| k != s.state) {
                transitions += 1;
            }
            known = Some(s.state);
        }
        if s.state.is_outage() {
            let run = current.get_or_insert_with(|| {
                outages += 1;
                (s.start, 0.0)
            });
            run.1 += s.seconds;
        } else {
            current = None;
        }
        if let Some(run) = current
            && longest.is_none_or(|l| run.1 > l.1)
        {
            longest = Some(run);
        }
    }
    let counted = up_seconds + down_seconds;
    History {
        since: window.start,
        seconds: window.seconds(),
        up_share: (counted > 0.0).then(|| up_seconds / counted),
        up_seconds,
        down_seconds,
        drained_seconds,
        transitions,
        outages,
        longest_outage_seconds: longest.map_or(0.0, |l| l.1),
        longest_outage_start: longest.map(|l| l.0),
        timeline,
    }
}

pub(super) fn secs(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).unwrap_or_default().as_secs_f64()
}
