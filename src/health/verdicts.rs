//! What the health task does with blocklist verdicts: it starts the checks each configuration
//! asks for, records every lookup, reports each listing found or gone
//! ([`HealthTask::listing_changed`]: a WARN line and the metric), brings each site's standing
//! (listed, held, clean) up to date, and rebuilds the answers when the demotions change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::listings::{Checked, ListingEvent};
use super::status::{EgressStatus, ListStatus, SiteReputation};
use super::status::{rfc3339, wall_clock};
use super::task::HealthTask;
use crate::answer::{Demotions, MxPlan};
use crate::config::{Action, reputation::warnings};
use crate::events::Event;
use crate::metrics::{DemotedLabels, EgressLabels, LookupLabels};
use crate::reputation::book::{Book, Change, Standing, Verdict};
use crate::reputation::{LookupReport, Outcome, Watch, canonical};
use crate::topology::SiteId;

impl HealthTask {
    /// Starts the checks the configuration asks for (those that stay the same keep running and
    /// keep their verdicts), and puts the metrics' series in step.
    pub(super) fn configure_listings(&mut self) {
        let config = &self.loaded.config;
        for warning in warnings(config) {
            warn!(%warning, "blocklist checks");
        }
        let watch = Watch::from_config(config).map(Arc::new);
        let old_series = self.listings.series();
        let old_sites: Vec<String> = self.listings.sites.iter().map(|s| s.name.clone()).collect();
        let l = &mut self.listings;
        let r = config.reputation.clone().unwrap_or_default();
        l.action = r.action;
        l.hold = r.hold;
        l.lists = watch
            .iter()
            .flat_map(|w| w.lists.iter().map(|list| list.name.clone()))
            .collect();
        l.sites = match &watch {
            None => Vec::new(),
            Some(_) => config
                .sites
                .iter()
                .enumerate()
                .filter(|(_, (_, s))| !s.egress.is_empty())
                .map(|(id, (name, s))| Checked {
                    id,
                    name: name.to_ascii_lowercase(),
                    egress: s.egress.iter().copied().map(canonical).collect(),
                })
                .collect(),
        };
        let (sites, lists) = (&l.sites, &l.lists);
        l.book.retain(
            |addr, list| {
                lists.iter().any(|l| &**l == list) && sites.iter().any(|s| s.egress.contains(&addr))
            },
            |site| sites.iter().any(|s| s.name == site),
        );
        l.run(watch, self.probes.tracker());
        let m = &self.metrics.reputation;
        let new_series = self.listings.series();
        for gone in old_series.iter().filter(|s| !new_series.contains(s)) {
            m.listed.remove(gone);
        }
        for labels in new_series {
            let listed = self
                .listings
                .book
                .entry(labels.address.parse().expect("an address"), &labels.list)
                .is_some_and(|e| matches!(e.verdict, Verdict::Listed { .. }));
            m.listed.get_or_create(&labels).set(i64::from(listed));
        }
        for list in &self.listings.lists {
            for result in Outcome::RESULTS {
                let _ = m.lookups.get_or_create(&LookupLabels {
                    list: list.to_string(),
                    result,
                });
            }
        }
        for site in old_sites {
            m.demoted.remove(&DemotedLabels { site });
        }
        self.refresh_standings(Instant::now(), true);
    }

    /// Takes a lookup result or the end of a hold.
    pub(super) fn listing_event(&mut self, event: ListingEvent) {
        if let ListingEvent::Lookup(report) = event {
            self.lookup_done(report);
        }
        self.refresh_standings(Instant::now(), false);
    }

    fn lookup_done(&mut self, r: LookupReport) {
        let sites = self.listings.sites_of(r.address);
        if sites.is_empty() || !self.listings.lists.contains(&r.list) {
            return; // from the checks of a configuration replaced since
        }
        self.metrics
            .reputation
            .lookups
            .get_or_create(&LookupLabels {
                list: r.list.to_string(),
                result: r.outcome.result(),
            })
            .inc();
        let recorded = self
            .listings
            .book
            .record(r.address, &r.list, &r.outcome, r.at);
        if let Some(problem) = recorded.new_problem {
            warn!(
                list = %r.list, address = %r.address, result = r.outcome.result(), %problem,
                "blocklist lookup gave no verdict; the last one stands"
            );
        }
        if recorded.recovered {
            info!(list = %r.list, address = %r.address, "blocklist lookups answer again");
        }
        if let Some(change) = recorded.change {
            for site in sites {
                self.listing_changed(&site, &change);
            }
        }
    }

    /// Where a change in the listing of one site's egress address is reported — found listed,
    /// or no longer listed: the log line and the metric. Anything else that should follow a
    /// listing change (an event history, a notification) belongs here too.
    fn listing_changed(&mut self, site: &str, change: &Change) {
        let labels = EgressLabels {
            site: site.to_string(),
            address: change.address.to_string(),
            list: change.list.to_string(),
        };
        let (listed, why) = match &change.verdict {
            Verdict::Listed { code, reason } => {
                let reason = reason.as_deref().unwrap_or("(the list gives none)");
                warn!(
                    site = %site, address = %change.address, list = %change.list, %code,
                    %reason,
                    "egress address listed on a blocklist: receivers that consult it refuse or junk this site's mail"
                );
                (
                    true,
                    format!("listed on {} ({code}): {reason}", change.list),
                )
            }
            _ => {
                info!(
                    site = %site, address = %change.address, list = %change.list,
                    "egress address no longer listed on a blocklist"
                );
                (false, format!("no longer listed on {}", change.list))
            }
        };
        self.events
            .record(Event::listing(site, change.address, listed, &why));
        self.metrics
            .reputation
            .listed
            .get_or_create(&labels)
            .set(i64::from(listed));
    }

    /// Brings every site's standing up to `now`, logs each change, and when the demotions
    /// change (or `force`), makes the next publish build with them.
    fn refresh_standings(&mut self, now: Instant, force: bool) {
        let l = &mut self.listings;
        let demote = l.action == Action::Demote;
        let hold = if demote { l.hold } else { Duration::ZERO };
        let mut changed = force;
        for site in &l.sites {
            if let Some(before) = l.book.stand(&site.name, &site.egress, hold, now) {
                let after = l.book.standing(&site.name);
                let what = log_standing(&site.name, before, after, demote);
                self.events.record(Event::standing(
                    &site.name,
                    before.name(),
                    after.name(),
                    what,
                ));
                changed = true;
            }
        }
        if !changed {
            return;
        }
        let mut demotions = Demotions::none();
        for site in &l.sites {
            let standing = l.book.standing(&site.name);
            let demoted = demote && standing.demotes();
            if demoted {
                demotions.demote(site.id, why(&l.book, site, standing));
            }
            self.metrics
                .reputation
                .demoted
                .get_or_create(&DemotedLabels {
                    site: site.name.clone(),
                })
                .set(i64::from(demoted));
        }
        if demotions != l.demotions {
            l.demotions = demotions;
            self.publisher.changed();
        }
    }
}

/// Why a site is demoted, for the note in the answers it shapes.
fn why(book: &Book, site: &Checked, standing: Standing) -> String {
    if let Standing::Held { until } = standing {
        return format!("delisted, held until {}", rfc3339(wall_clock(until)));
    }
    match book.listings(&site.egress).next() {
        Some((address, list, entry)) => {
            let mut why = format!("{address} listed on {list}");
            if let Verdict::Listed {
                reason: Some(reason),
                ..
            } = &entry.verdict
            {
                why.push_str(": ");
                why.push_str(reason);
            }
            why
        }
        None => "listed".into(),
    }
}

/// Logs a change of standing; returns what it means, for the event.
fn log_standing(site: &str, before: Standing, after: Standing, demote: bool) -> &'static str {
    match (before, after) {
        (_, Standing::Listed) if demote => {
            let what = "site demoted: its relays now follow every clean site's in the other sites' answers, and its own name leads with its first healthy clean fallback site, if it has one";
            warn!(site = %site, from = before.name(), "{what}");
            what
        }
        (_, Standing::Listed) => {
            let what = "site's egress is listed; answers unchanged (reputation.action = \"warn\")";
            warn!(site = %site, from = before.name(), "{what}");
            what
        }
        (_, Standing::Held { until }) => {
            let what =
                "no egress address listed any more; the site stays demoted until its hold runs out";
            info!(site = %site, until = %rfc3339(wall_clock(until)), "{what}");
            what
        }
        (_, Standing::Clean) if demote => {
            let what = "site no longer demoted: its relays lead its answers again";
            info!(site = %site, from = before.name(), "{what}");
            what
        }
        (_, Standing::Clean) => {
            let what = "no egress address listed any more";
            info!(site = %site, "{what}");
            what
        }
    }
}

impl HealthTask {
    /// The blocklist status of `site`, whose current answer is `plan` (when the snapshot is of
    /// the running configuration); `None` when nothing is checked for it and nothing shaped it.
    pub(super) fn site_reputation(
        &self,
        site: SiteId,
        plan: Option<&MxPlan>,
    ) -> Option<SiteReputation> {
        let topology = &self.loaded.topology;
        let l = &self.listings;
        let answer_shaped_by: Vec<String> = plan
            .map(|p| {
                p.shaped_by
                    .iter()
                    .map(|&s| topology.sites[s].name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let checked = l.sites.iter().find(|c| c.id == site);
        if checked.is_none() && answer_shaped_by.is_empty() {
            return None;
        }
        let standing = checked.map_or(Standing::Clean, |c| l.book.standing(&c.name));
        let egress = checked.map_or_else(Vec::new, |c| {
            c.egress
                .iter()
                .map(|&address| EgressStatus {
                    address,
                    lists: l
                        .lists
                        .iter()
                        .map(|list| {
                            let entry = l.book.entry(address, list);
                            let (verdict, code, reason) = match entry.map(|e| &e.verdict) {
                                Some(Verdict::Listed { code, reason }) => {
                                    ("listed", Some(*code), reason.clone())
                                }
                                Some(Verdict::Clean) => ("clean", None, None),
                                _ => ("unknown", None, None),
                            };
                            let time =
                                |t: Option<std::time::Instant>| t.map(|t| rfc3339(wall_clock(t)));
                            ListStatus {
                                list: list.to_string(),
                                verdict: verdict.into(),
                                code,
                                reason,
                                since: time(entry.and_then(|e| e.since)),
                                checked: time(entry.and_then(|e| e.checked)),
                                problem: entry.and_then(|e| e.problem.clone()),
                            }
                        })
                        .collect(),
                })
                .collect()
        });
        Some(SiteReputation {
            standing: standing.name().into(),
            demoted: l.action == Action::Demote && standing.demotes(),
            demoted_until: match standing {
                Standing::Held { until } if l.action == Action::Demote => {
                    Some(rfc3339(wall_clock(until)))
                }
                _ => None,
            },
            answer_shaped_by,
            egress,
        })
    }
}
