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
use std::time::SystemTime;

use super::event::{DRAINED, Event, Kind};

mod figures;

pub(crate) use figures::{DAY, Window};
pub(crate) use figures::{History, Phase, Segment};
use figures::{secs, summarize};

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

#[cfg(test)]
mod tests;
