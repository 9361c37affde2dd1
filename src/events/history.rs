//! A relay's or a site's recent past, rebuilt from the events and the state now: its timeline
//! over a window (normally the last 24 hours), the share of it spent up, the transitions, and
//! the longest outage. Pure: times come in as arguments.
//!
//! A relay is up while it is not drained and one of its addresses is up, down while none is up
//! and one is down; a site is up while its local hosts lead its answer, in an outage while its
//! answer names only remote hosts or falls back to the failsafe. Between a stop and the next
//! start (and before a start with nothing before it) nothing is known. The state before the
//! oldest event about a subject is the `from` of that event; a subject no event mentions has
//! been as it is now all along. Time unknown or drained counts neither as up nor as down.

use std::borrow::Borrow;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::event::{DRAINED, Event, Kind, rfc3339, rfc3339_option};

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

/// What is known of a relay now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelayNow<'a> {
    /// The relay's site, as events name it (any letter case matches).
    pub site: &'a str,
    /// The relay's name in its site (any letter case matches).
    pub host: &'a str,
    /// Each address and its verdict: [`Phase::Up`], [`Phase::Down`] or [`Phase::Unknown`].
    pub addresses: Vec<(String, Phase)>,
    /// Whether an operator has it drained now.
    pub drained: bool,
}

/// The relay's window, from `events` (oldest first) and its state now.
pub(crate) fn relay<E: Borrow<Event>>(events: &[E], now: &RelayNow, window: Window) -> History {
    let about = |e: &Event| e.is_about(now.site, now.host);
    let addresses = now
        .addresses
        .iter()
        .map(|(address, phase)| {
            let first = first(events, |e| {
                about(e) && e.kind == Kind::State && e.address.as_deref() == Some(address)
            });
            let before = match first {
                Some(e) if e.kind == Kind::State => Phase::named(e.from.as_deref().unwrap_or("")),
                Some(_) => Phase::Unknown,
                None => *phase,
            };
            (address.clone(), before)
        })
        .collect();
    // Drains outlast restarts: only a drain or an undrain tells what came before.
    let drained = events
        .iter()
        .map(Borrow::borrow)
        .find(|e| about(e) && matches!(e.kind, Kind::Drain | Kind::Undrain))
        .map_or(now.drained, |e| e.from.as_deref() == Some(DRAINED));
    let state = RelayState {
        running: was_running(events),
        drained,
        addresses,
    };
    replay(events, state, window, |s, e| {
        match e.kind {
            Kind::Start | Kind::Stop => {
                s.running = e.kind == Kind::Start;
                s.addresses.iter_mut().for_each(|a| a.1 = Phase::Unknown);
            }
            Kind::State if about(e) => {
                if let Some(a) = s
                    .addresses
                    .iter_mut()
                    .find(|a| e.address.as_deref() == Some(&a.0))
                {
                    a.1 = Phase::named(e.to.as_deref().unwrap_or(""));
                }
            }
            Kind::Drain if about(e) => s.drained = true,
            Kind::Undrain if about(e) => s.drained = false,
            _ => {}
        }
        s.phase()
    })
}

/// The site's window, from `events` (oldest first) and its answer's mode now.
pub(crate) fn site<E: Borrow<Event>>(
    events: &[E],
    site: &str,
    mode_now: Phase,
    window: Window,
) -> History {
    let mode = match first(events, |e| e.kind == Kind::Mode && e.is_of_site(site)) {
        Some(e) if e.kind == Kind::Mode => Phase::named(e.from.as_deref().unwrap_or("")),
        Some(_) => Phase::Unknown,
        None => mode_now,
    };
    let state = SiteState {
        running: was_running(events),
        mode,
    };
    replay(events, state, window, |s, e| {
        match e.kind {
            Kind::Start | Kind::Stop => {
                s.running = e.kind == Kind::Start;
                s.mode = Phase::Unknown;
            }
            Kind::Mode if e.is_of_site(site) => {
                s.mode = Phase::named(e.to.as_deref().unwrap_or(""));
            }
            _ => {}
        }
        s.phase()
    })
}

trait Subject {
    fn phase(&self) -> Phase;
}

struct RelayState {
    running: bool,
    drained: bool,
    addresses: Vec<(String, Phase)>,
}

impl Subject for RelayState {
    fn phase(&self) -> Phase {
        let any = |p| self.addresses.iter().any(|a| a.1 == p);
        if !self.running {
            Phase::Unknown
        } else if self.drained {
            Phase::Drained
        } else if any(Phase::Up) {
            Phase::Up
        } else if any(Phase::Down) {
            Phase::Down
        } else {
            Phase::Unknown
        }
    }
}

struct SiteState {
    running: bool,
    mode: Phase,
}

impl Subject for SiteState {
    fn phase(&self) -> Phase {
        if self.running {
            self.mode
        } else {
            Phase::Unknown
        }
    }
}

/// The first event that `wanted` picks or that is a start or a stop: what decides the state
/// before the history begins.
fn first<E: Borrow<Event>>(events: &[E], wanted: impl Fn(&Event) -> bool) -> Option<&Event> {
    events
        .iter()
        .map(Borrow::borrow)
        .find(|e| matches!(e.kind, Kind::Start | Kind::Stop) || wanted(e))
}

/// Whether smarthostd ran before the oldest event: unless that history begins with a start.
fn was_running<E: Borrow<Event>>(events: &[E]) -> bool {
    first(events, |_| false).is_none_or(|e| e.kind == Kind::Stop)
}

/// Plays `events` over `state` (`apply` returns the phase after each) and sums up the window.
fn replay<E: Borrow<Event>, S: Subject>(
    events: &[E],
    mut state: S,
    window: Window,
    mut apply: impl FnMut(&mut S, &Event) -> Phase,
) -> History {
    // Where the phase changes: the phase before any event, then each change.
    let mut changes = vec![(SystemTime::UNIX_EPOCH, state.phase())];
    let mut last = SystemTime::UNIX_EPOCH;
    for e in events.iter().map(Borrow::borrow) {
        // A clock set back cannot make time run backwards in a timeline.
        last = last.max(e.time);
        let phase = apply(&mut state, e);
        if changes.last().is_some_and(|c| c.1 != phase) {
            changes.push((last, phase));
        }
    }
    let mut timeline: Vec<Segment> = Vec::new();
    for (i, &(at, phase)) in changes.iter().enumerate() {
        let start = at.max(window.start);
        let end = changes
            .get(i + 1)
            .map_or(window.end, |next| next.0)
            .min(window.end);
        if end <= start {
            continue;
        }
        match timeline.last_mut() {
            // After a stretch that took no time (a clock set back), the same phase goes on.
            Some(last) if last.state == phase => last.seconds += secs(start, end),
            _ => timeline.push(Segment {
                state: phase,
                start,
                seconds: secs(start, end),
            }),
        }
    }
    summarize(timeline, window)
}

/// The figures of a timeline.
fn summarize(timeline: Vec<Segment>, window: Window) -> History {
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

fn secs(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).unwrap_or_default().as_secs_f64()
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
