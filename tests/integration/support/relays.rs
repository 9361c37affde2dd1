//! The fake relays tests serve: healthy SMTP listeners on loopback, by site, and the
//! `[sites.*]` tables that name them.

use std::time::Duration;

use smarthostd::probe::smtp::{Passed, ProbeSettings, probe};

use crate::fake_smtp::{Behavior, FakeSmtp};

/// Healthy fake relays of up to three sites, each named `mail1`, `mail2`, ... in its site's
/// table, in order. A test stops, restarts or changes them through the fields.
pub(crate) struct Relays {
    pub(crate) oxford: Vec<FakeSmtp>,
    pub(crate) cambridge: Vec<FakeSmtp>,
    pub(crate) london: Vec<FakeSmtp>,
}

impl Relays {
    /// What most tests need: Oxford with `mail1` and `mail2`, Cambridge with `mail1`.
    pub(crate) async fn start() -> Self {
        Self::sites(2, 1, 0).await
    }

    /// `oxford`, `cambridge` and `london` relays; a site with none is left out of the tables.
    pub(crate) async fn sites(oxford: usize, cambridge: usize, london: usize) -> Self {
        Self {
            oxford: healthy(oxford).await,
            cambridge: healthy(cambridge).await,
            london: healthy(london).await,
        }
    }

    /// The `[sites.*]` tables.
    pub(crate) fn toml(&self) -> String {
        self.toml_with(&[])
    }

    /// The `[sites.*]` tables, with each `(site, lines)` of `lines` added to that site's table.
    pub(crate) fn toml_with(&self, lines: &[(&str, &str)]) -> String {
        let sites = [
            ("oxford", &self.oxford),
            ("cambridge", &self.cambridge),
            ("london", &self.london),
        ];
        for (site, _) in lines {
            assert!(
                sites
                    .iter()
                    .any(|(name, relays)| name == site && !relays.is_empty()),
                "no relays at {site}"
            );
        }
        sites
            .iter()
            .filter(|(_, relays)| !relays.is_empty())
            .map(|(site, relays)| {
                let extra: Vec<&str> = (lines.iter())
                    .filter(|(name, _)| name == site)
                    .map(|(_, l)| *l)
                    .collect();
                site_table(site, relays, &extra.join("\n"))
            })
            .collect()
    }
}

async fn healthy(n: usize) -> Vec<FakeSmtp> {
    let mut relays = Vec::with_capacity(n);
    for _ in 0..n {
        relays.push(FakeSmtp::start(Behavior::Healthy).await);
    }
    relays
}

/// `[sites.SITE]` with `relays` as its hosts `mail1`, `mail2`, ..., then `lines`.
pub(crate) fn site_table(site: &str, relays: &[FakeSmtp], lines: &str) -> String {
    let hosts: Vec<String> = (relays.iter().enumerate())
        .map(|(i, r)| r.host_entry(&format!("mail{}", i + 1)))
        .collect();
    let lines = if lines.is_empty() {
        String::new()
    } else {
        format!("{lines}\n")
    };
    format!("[sites.{site}]\nhosts = [{}]\n{lines}", hosts.join(", "))
}

/// `[sites.oxford]` and `[sites.cambridge]` with one relay, `mail1`, each.
pub(crate) fn two_sites(oxford: &FakeSmtp, cambridge: &FakeSmtp) -> String {
    site_table("oxford", std::slice::from_ref(oxford), "")
        + &site_table("cambridge", std::slice::from_ref(cambridge), "")
}

/// Settings to probe a fake relay with directly: plain SMTP, EHLO `probe.test`, `timeout` a
/// step.
pub(crate) fn probe_settings(timeout: Duration) -> ProbeSettings {
    ProbeSettings {
        timeout,
        ehlo: "probe.test".into(),
        tls: None,
        tls_name: None,
        source: None,
        tlsa: None,
    }
}

/// The probe of a fresh fake relay with `behavior`: what passed, or the reason it failed.
pub(crate) async fn probe_outcome(
    behavior: Behavior,
    settings: &ProbeSettings,
) -> Result<Passed, String> {
    let host = FakeSmtp::start(behavior).await;
    probe(host.addr, settings).await.map_err(|f| f.reason)
}
