//! The fake relays tests serve: healthy SMTP listeners on loopback, by site.

use crate::fake_smtp::{Behavior, FakeSmtp};

/// The relays most tests need: Oxford with `mail1` and `mail2`, Cambridge with `mail1`, each a
/// healthy fake relay on loopback.
pub(crate) struct Relays {
    pub(crate) oxford: Vec<FakeSmtp>,
    pub(crate) cambridge: FakeSmtp,
}

impl Relays {
    pub(crate) async fn start() -> Self {
        Self {
            oxford: vec![
                FakeSmtp::start(Behavior::Healthy).await,
                FakeSmtp::start(Behavior::Healthy).await,
            ],
            cambridge: FakeSmtp::start(Behavior::Healthy).await,
        }
    }

    pub(crate) fn toml(&self) -> String {
        format!(
            "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
            self.oxford[0].host_entry("mail1"),
            self.oxford[1].host_entry("mail2"),
            self.cambridge.host_entry("mail1")
        )
    }
}

/// `[sites.oxford]` and `[sites.cambridge]` with one relay, `mail1`, each.
pub(crate) fn two_sites(oxford: &FakeSmtp, cambridge: &FakeSmtp) -> String {
    format!(
        "[sites.oxford]\nhosts = [{}]\n[sites.cambridge]\nhosts = [{}]\n",
        oxford.host_entry("mail1"),
        cambridge.host_entry("mail1")
    )
}
