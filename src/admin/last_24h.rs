//! Each relay's and each site's last 24 hours in the status report: the events about it (and
//! every start and stop), replayed against what the report says of it now.

use std::sync::Arc;
use std::time::SystemTime;

use rustc_hash::FxHashMap;

use crate::answer::Mode;
use crate::events::history::{self, Phase, RelayNow, Window};
use crate::events::{Event, Kind};
use crate::health::status::StatusReport;

/// Fills in `last_24h` of every site and host of `report`, made at `now`.
pub(super) fn annotate(report: &mut StatusReport, events: &[Arc<Event>], now: SystemTime) {
    let index = Index::new(events);
    let window = Window::last_day(now);
    for site in &mut report.sites {
        let name = site.name.clone();
        let mode = match site.mode {
            Mode::Normal => Phase::Local,
            Mode::RemoteOnly => Phase::RemoteOnly,
            Mode::Failsafe => Phase::Failsafe,
        };
        let own = index.of(&index.sites, &name.to_ascii_lowercase());
        site.last_24h = Some(history::site(&own, &name, mode, window));
        for host in &mut site.hosts {
            let relay = RelayNow {
                site: &name,
                host: &host.name,
                addresses: host
                    .addresses
                    .iter()
                    .map(|a| (a.address.to_string(), Phase::named(&a.state)))
                    .collect(),
                drained: host.drained,
            };
            let key = format!("{}/{}", name, host.name).to_ascii_lowercase();
            let own = index.of(&index.hosts, &key);
            host.last_24h = Some(history::relay(&own, &relay, window));
        }
    }
}

/// Events by the site or host they are about, so that a report of many relays reads each
/// event a few times rather than once per relay.
struct Index<'a> {
    events: &'a [Arc<Event>],
    /// Starts and stops: they concern everyone.
    lifecycle: Vec<usize>,
    /// By lower-case `site/host`.
    hosts: FxHashMap<String, Vec<usize>>,
    /// Mode changes by lower-case site.
    sites: FxHashMap<String, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(events: &'a [Arc<Event>]) -> Self {
        let mut index = Self {
            events,
            lifecycle: Vec::new(),
            hosts: FxHashMap::default(),
            sites: FxHashMap::default(),
        };
        for (i, e) in events.iter().enumerate() {
            match (e.kind, &e.site, &e.host) {
                (Kind::Start | Kind::Stop, _, _) => index.lifecycle.push(i),
                (Kind::Mode, Some(site), _) => index
                    .sites
                    .entry(site.to_ascii_lowercase())
                    .or_default()
                    .push(i),
                (_, Some(site), Some(host)) => index
                    .hosts
                    .entry(format!("{site}/{host}").to_ascii_lowercase())
                    .or_default()
                    .push(i),
                _ => {}
            }
        }
        index
    }

    /// The events of `key` in `map`, and every start and stop, oldest first.
    fn of(&self, map: &FxHashMap<String, Vec<usize>>, key: &str) -> Vec<&'a Event> {
        let own = map.get(key).map_or(&[][..], Vec::as_slice);
        let (mut a, mut b) = (own.iter().peekable(), self.lifecycle.iter().peekable());
        let mut merged = Vec::with_capacity(own.len() + self.lifecycle.len());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(&i) = next {
                merged.push(&*self.events[i]);
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relays_events_come_with_every_start_and_stop_in_order() {
        let a = "192.0.2.1".parse().unwrap();
        let events: Vec<Arc<Event>> = [
            Event::start(),
            Event::state("Oxford", "mail1", a, "unknown", "up", "x"),
            Event::state("cambridge", "mail1", a, "unknown", "up", "x"),
            Event::mode("oxford", "unknown", "local", "x"),
            Event::stop(),
            Event::drain("oxford", "MAIL1", false, None, "x"),
            Event::reload("x"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let index = Index::new(&events);
        let kinds = |v: Vec<&Event>| v.iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(index.of(&index.hosts, "oxford/mail1")),
            [Kind::Start, Kind::State, Kind::Stop, Kind::Drain]
        );
        assert_eq!(
            kinds(index.of(&index.sites, "oxford")),
            [Kind::Start, Kind::Mode, Kind::Stop]
        );
        assert_eq!(
            kinds(index.of(&index.hosts, "london/mail1")),
            [Kind::Start, Kind::Stop]
        );
    }
}
