//! The demotions: which sites a blocklist listing of their egress demotes, and why — the
//! build's other input beside the health view, made by the health task from the verdicts
//! (`reputation.action = "demote"`); and the note that tells, in a TXT record at a name, which
//! of them shaped its answer.

use super::plan::MxPlan;
use crate::topology::{SiteId, Topology};

/// The sites whose relays answers move behind clean sites, each with why (for the TXT note at
/// the names whose answers it shaped, and for `explain`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demotions {
    why: Vec<Option<Box<str>>>,
}

/// How the note in a shaped answer's TXT record begins, so that `explain` can tell it from
/// other text.
pub(crate) const NOTE_PREFIX: &str = "smarthostd: ";

impl Demotions {
    /// No site demoted: the answers health alone gives.
    pub fn none() -> Self {
        Self::default()
    }

    /// Demotes `site`, saying why (e.g. "198.51.100.7 listed on zen").
    pub fn demote(&mut self, site: SiteId, why: impl Into<Box<str>>) {
        if self.why.len() <= site {
            self.why.resize(site + 1, None);
        }
        self.why[site] = Some(why.into());
    }

    /// Whether `site` is demoted: its relays move behind clean sites.
    pub fn is_demoted(&self, site: SiteId) -> bool {
        self.why.get(site).is_some_and(Option::is_some)
    }

    /// Why `site` is demoted, if it is.
    pub fn why(&self, site: SiteId) -> Option<&str> {
        self.why.get(site)?.as_deref()
    }

    /// Whether no site is demoted.
    pub fn is_empty(&self) -> bool {
        self.why.iter().all(Option::is_none)
    }
}

/// Notes in one TXT record at most: the answer's size stays far from a message's limit, however
/// many sites are listed at once.
const MAX_NOTES: usize = 8;

/// The TXT strings that say why an answer is shaped: one per demoted site (at most
/// [`MAX_NOTES`], then how many more), each at most 255 bytes.
pub(crate) fn notes(topology: &Topology, demotions: &Demotions, plan: &MxPlan) -> Vec<String> {
    let mut notes: Vec<String> = plan
        .shaped_by
        .iter()
        .take(MAX_NOTES)
        .map(|&s| {
            let mut note = format!(
                "{NOTE_PREFIX}{} demoted: {}",
                topology.sites[s].name,
                demotions.why(s).unwrap_or("listed")
            );
            if note.len() > 255 {
                let mut end = 255;
                while !note.is_char_boundary(end) {
                    end -= 1;
                }
                note.truncate(end);
            }
            note
        })
        .collect();
    if let Some(more) = plan
        .shaped_by
        .len()
        .checked_sub(MAX_NOTES)
        .filter(|&n| n > 0)
    {
        notes.push(format!("{NOTE_PREFIX}and {more} more demoted sites"));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::plan::Mode;
    use crate::test_support::{config_from, topology};

    const TWO_SITES: &str = r#"
        [zone]
        origin = "smarthost.internal"
        file = "z.zone"
        [sites.oxford]
        hosts = [ { name = "mail1", addresses = ["127.0.1.11"] } ]
        [sites.cambridge]
        hosts = [ { name = "mail1", addresses = ["127.0.1.21"] } ]
    "#;
    const OXFORD: SiteId = 0;
    const CAMBRIDGE: SiteId = 1;

    fn shaped_by(sites: Vec<SiteId>) -> MxPlan {
        MxPlan {
            exchanges: Vec::new(),
            mode: Mode::Normal,
            degraded: false,
            shaped_by: sites,
        }
    }

    #[test]
    fn notes_name_each_site_that_shaped_the_answer() {
        let topo = topology(&config_from(TWO_SITES));
        let mut d = Demotions::none();
        d.demote(OXFORD, "198.51.100.7 listed on zen");
        assert!(d.is_demoted(OXFORD) && !d.is_demoted(CAMBRIDGE) && !d.is_demoted(7));
        assert_eq!(
            notes(&topo, &d, &shaped_by(vec![OXFORD])),
            vec!["smarthostd: oxford demoted: 198.51.100.7 listed on zen".to_string()]
        );
        d.demote(OXFORD, "é".repeat(200));
        let long = &notes(&topo, &d, &shaped_by(vec![OXFORD]))[0];
        assert!(long.len() <= 255 && long.ends_with('é'));
        assert!(notes(&topo, &d, &shaped_by(Vec::new())).is_empty());
        let many = notes(&topo, &d, &shaped_by(vec![OXFORD; 11]));
        assert_eq!(many.len(), MAX_NOTES + 1);
        assert_eq!(many[MAX_NOTES], "smarthostd: and 3 more demoted sites");
    }
}
