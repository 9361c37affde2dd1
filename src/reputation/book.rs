//! The book of verdicts: what each list last said of each egress address, and each site's
//! standing — listed, held (delisted, but demoted until its hold runs out), or clean.
//!
//! Pure: the health task records each lookup with the time it came and asks for standings at
//! a time it gives. Only a listing or a clean answer is a verdict; an error code, SERVFAIL or a
//! timeout leaves the last verdict as it was.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Outcome;

/// What a list last said of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No verdict yet: no lookup has answered.
    Unknown,
    /// Not on the list: NXDOMAIN, or no A record.
    Clean,
    /// On the list.
    Listed {
        /// The list's answer code, an address in its `listed` networks (e.g. 127.0.0.2).
        code: Ipv4Addr,
        /// The list's TXT record at the same name, when it has one.
        reason: Option<String>,
    },
}

/// One address on one list.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What the list last said; an error or a timeout leaves it as it was.
    pub verdict: Verdict,
    /// When the verdict began.
    pub since: Option<Instant>,
    /// When the last lookup came.
    pub checked: Option<Instant>,
    /// Why the last lookup gave no verdict (a list error or a timeout); `None` after a verdict.
    pub problem: Option<String>,
}

/// A verdict that changed: an address found listed, or found clean after a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The egress address.
    pub address: IpAddr,
    /// The list's name.
    pub list: Arc<str>,
    /// The new verdict: [`Verdict::Listed`] or [`Verdict::Clean`].
    pub verdict: Verdict,
}

/// What recording one lookup did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The verdict changed.
    pub change: Option<Change>,
    /// A problem began, or changed its words: worth a log line (a repeat is only counted).
    pub new_problem: Option<String>,
    /// Lookups answer again after a problem.
    pub recovered: bool,
}

/// A site's standing with the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// No egress address is listed (or none has a verdict yet).
    Clean,
    /// An egress address is listed.
    Listed,
    /// Delisted at the last check, and still demoted until `until`.
    Held {
        /// When the hold after the delisting (`reputation.hold`) runs out.
        until: Instant,
    },
}

impl Standing {
    /// Whether a site with this standing is demoted (with `action = "demote"`).
    pub(crate) fn demotes(self) -> bool {
        self != Standing::Clean
    }

    /// The lower-case name, for logs and status.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Standing::Clean => "clean",
            Standing::Listed => "listed",
            Standing::Held { .. } => "held",
        }
    }
}

/// Every verdict, and every site's standing.
#[derive(Debug, Default)]
pub(crate) struct Book {
    entries: HashMap<(IpAddr, Arc<str>), Entry>,
    standings: HashMap<String, Standing>,
}

impl Book {
    /// Records one lookup of `address` on `list`, made `at`.
    pub(crate) fn record(
        &mut self,
        address: IpAddr,
        list: &Arc<str>,
        outcome: &Outcome,
        at: Instant,
    ) -> Recorded {
        let entry = self
            .entries
            .entry((address, list.clone()))
            .or_insert(Entry {
                verdict: Verdict::Unknown,
                since: None,
                checked: None,
                problem: None,
            });
        entry.checked = Some(at);
        let verdict = match outcome {
            Outcome::Listed { code, reason } => Verdict::Listed {
                code: *code,
                reason: reason.clone(),
            },
            Outcome::Clean => Verdict::Clean,
            Outcome::Error(problem) => return entry.note_problem(problem.clone()),
            Outcome::Timeout => return entry.note_problem("no answer in time".to_string()),
        };
        let recovered = entry.problem.take().is_some();
        let was_listed = matches!(entry.verdict, Verdict::Listed { .. });
        let is_listed = matches!(verdict, Verdict::Listed { .. });
        let kind_changed =
            std::mem::discriminant(&entry.verdict) != std::mem::discriminant(&verdict);
        if kind_changed {
            entry.since = Some(at);
        }
        // A listing's code or reason may change while it stays a listing: kept, not reported.
        entry.verdict = verdict.clone();
        let change = (was_listed != is_listed).then(|| Change {
            address,
            list: list.clone(),
            verdict,
        });
        Recorded {
            change,
            new_problem: None,
            recovered,
        }
    }

    /// The verdict of `address` on `list`, if it was ever looked up.
    pub(crate) fn entry(&self, address: IpAddr, list: &str) -> Option<&Entry> {
        self.entries.get(&(address, Arc::from(list)))
    }

    /// The lists on which one of `egress` is listed, with the address and entry.
    pub(crate) fn listings<'a>(
        &'a self,
        egress: &'a [IpAddr],
    ) -> impl Iterator<Item = (IpAddr, &'a str, &'a Entry)> + 'a {
        let mut found: Vec<_> = self
            .entries
            .iter()
            .filter(|((addr, _), e)| {
                egress.contains(addr) && matches!(e.verdict, Verdict::Listed { .. })
            })
            .map(|((addr, list), e)| (*addr, &**list, e))
            .collect();
        found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        found.into_iter()
    }

    /// Brings `site`'s standing up to `now` from the verdicts on its `egress` addresses: a
    /// listing makes it listed; the last listing gone, it is held for `hold` (zero: clean at
    /// once); a hold that has run out makes it clean. Returns the standing before, when it
    /// changed.
    pub(crate) fn stand(
        &mut self,
        site: &str,
        egress: &[IpAddr],
        hold: Duration,
        now: Instant,
    ) -> Option<Standing> {
        let listed = self.listings(egress).next().is_some();
        let before = self.standing(site);
        let after = match before {
            _ if listed => Standing::Listed,
            Standing::Listed if !hold.is_zero() => Standing::Held { until: now + hold },
            Standing::Held { until } if until > now => before,
            _ => Standing::Clean,
        };
        if after == Standing::Clean {
            self.standings.remove(site);
        } else {
            self.standings.insert(site.to_string(), after);
        }
        (after != before).then_some(before)
    }

    /// `site`'s standing as last brought up to date.
    pub(crate) fn standing(&self, site: &str) -> Standing {
        self.standings.get(site).copied().unwrap_or(Standing::Clean)
    }

    /// When the first hold runs out.
    pub(crate) fn next_hold_end(&self) -> Option<Instant> {
        self.standings
            .values()
            .filter_map(|s| match s {
                Standing::Held { until } => Some(*until),
                _ => None,
            })
            .min()
    }

    /// Forgets the verdicts of addresses and lists no longer checked, and the standings of
    /// sites no longer configured: what stays keeps its verdict across a reload.
    pub(crate) fn retain(
        &mut self,
        checked: impl Fn(IpAddr, &str) -> bool,
        site: impl Fn(&str) -> bool,
    ) {
        self.entries.retain(|(addr, list), _| checked(*addr, list));
        self.standings.retain(|name, _| site(name));
    }
}

impl Entry {
    fn note_problem(&mut self, problem: String) -> Recorded {
        let new = self.problem.as_ref() != Some(&problem);
        self.problem = Some(problem.clone());
        Recorded {
            change: None,
            new_problem: new.then_some(problem),
            recovered: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(code: u8) -> Outcome {
        Outcome::Listed {
            code: Ipv4Addr::new(127, 0, 0, code),
            reason: Some("see https://bl.example/".into()),
        }
    }

    #[test]
    fn only_a_listing_or_a_clean_answer_changes_a_verdict() {
        let mut book = Book::default();
        let (addr, zen): (IpAddr, Arc<str>) = ("198.51.100.7".parse().unwrap(), "zen".into());
        let t0 = Instant::now();
        let r = book.record(addr, &zen, &Outcome::Clean, t0);
        assert_eq!(r, Recorded::default(), "clean from unknown is no news");
        let r = book.record(addr, &zen, &listed(2), t0);
        assert_eq!(
            r.change.unwrap().verdict,
            book.entry(addr, "zen").unwrap().verdict
        );
        assert_eq!(book.record(addr, &zen, &listed(4), t0).change, None);
        // Errors and timeouts keep the listing; each new problem is reported once.
        let r = book.record(addr, &zen, &Outcome::Timeout, t0);
        assert_eq!(r.new_problem.as_deref(), Some("no answer in time"));
        assert_eq!(
            book.record(addr, &zen, &Outcome::Timeout, t0).new_problem,
            None
        );
        let r = book.record(
            addr,
            &zen,
            &Outcome::Error("answer 127.255.255.254".into()),
            t0,
        );
        assert!(r.new_problem.is_some());
        assert!(matches!(
            book.entry(addr, "zen").unwrap().verdict,
            Verdict::Listed { .. }
        ));
        let r = book.record(addr, &zen, &Outcome::Clean, t0);
        assert!(r.recovered);
        assert_eq!(r.change.unwrap().verdict, Verdict::Clean);
        assert_eq!(book.entry(addr, "zen").unwrap().problem, None);
    }

    #[test]
    fn a_delisted_site_is_held_then_clean() {
        let mut book = Book::default();
        let (addr, zen): (IpAddr, Arc<str>) = ("198.51.100.7".parse().unwrap(), "zen".into());
        let egress = [addr, "2001:db8::25".parse().unwrap()];
        let hold = Duration::from_secs(3600);
        let t0 = Instant::now();
        assert_eq!(book.stand("oxford", &egress, hold, t0), None);
        book.record(addr, &zen, &listed(2), t0);
        assert_eq!(
            book.stand("oxford", &egress, hold, t0),
            Some(Standing::Clean)
        );
        assert_eq!(book.standing("oxford"), Standing::Listed);
        let t1 = t0 + Duration::from_secs(60);
        book.record(addr, &zen, &Outcome::Clean, t1);
        assert_eq!(
            book.stand("oxford", &egress, hold, t1),
            Some(Standing::Listed)
        );
        assert_eq!(book.standing("oxford"), Standing::Held { until: t1 + hold });
        assert_eq!(book.next_hold_end(), Some(t1 + hold));
        assert_eq!(book.stand("oxford", &egress, hold, t1 + hold / 2), None);
        assert!(book.standing("oxford").demotes());
        // Listed again during the hold: listed, and a later delisting holds afresh.
        let t2 = t1 + hold / 2;
        book.record(addr, &zen, &listed(2), t2);
        book.stand("oxford", &egress, hold, t2);
        assert_eq!(book.standing("oxford"), Standing::Listed);
        book.record(addr, &zen, &Outcome::Clean, t2);
        book.stand("oxford", &egress, hold, t2);
        assert_eq!(book.standing("oxford"), Standing::Held { until: t2 + hold });
        assert!(book.stand("oxford", &egress, hold, t2 + hold).is_some());
        assert_eq!(book.standing("oxford"), Standing::Clean);
        assert_eq!(book.next_hold_end(), None);
    }

    #[test]
    fn without_a_hold_delisting_is_clean_at_once_and_a_reload_keeps_what_stays() {
        let mut book = Book::default();
        let (addr, zen): (IpAddr, Arc<str>) = ("198.51.100.7".parse().unwrap(), "zen".into());
        let t0 = Instant::now();
        book.record(addr, &zen, &listed(2), t0);
        book.stand("oxford", &[addr], Duration::ZERO, t0);
        book.record(addr, &zen, &Outcome::Clean, t0);
        book.stand("oxford", &[addr], Duration::ZERO, t0);
        assert_eq!(book.standing("oxford"), Standing::Clean);
        book.record(addr, &zen, &listed(2), t0);
        book.stand("oxford", &[addr], Duration::ZERO, t0);
        book.retain(|_, list| list == "zen", |site| site == "oxford");
        assert_eq!(book.standing("oxford"), Standing::Listed);
        assert_eq!(book.listings(&[addr]).count(), 1);
        book.retain(|_, list| list == "spamcop", |_| false);
        assert_eq!(book.listings(&[addr]).count(), 0);
        assert_eq!(book.standing("oxford"), Standing::Clean);
    }
}
