//! One event: what changed, when, where, and why. The same shape is kept in memory, written to
//! `events.jsonl` (one JSON object a line) and served by `GET /events`.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::times::{rfc3339, rfc3339_option};

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An address's verdict changed (`from`/`to`: `unknown`, `up`, `down`), with the probe
    /// result that decided it as `reason`.
    State,
    /// An operator drained a host (`until` for a maintenance window).
    Drain,
    /// A drain ended: by an operator, or by itself at the end of its window (`reason` says).
    Undrain,
    /// A reload took effect; `reason` is what it changed, as its reply said.
    Reload,
    /// A reload was refused; `reason` is the error. The running configuration stayed.
    ReloadFailed,
    /// A site's answer changed mode (`from`/`to`: `unknown`, `local`, `remote-only`,
    /// `failsafe`): what senders were given.
    Mode,
    /// A site's egress address was found on a DNS blocklist (`to`: `listed`) or no longer
    /// (`to`: `clean`); `reason` names the list, its answer code and its text.
    Listing,
    /// A site's standing from its blocklist verdicts changed (`from`/`to`: `clean`, `listed`,
    /// `held`): whether its answers were demoted.
    Standing,
    /// A peer of the cluster (`address`) became unreachable for a minute (`to`: `unreachable`)
    /// or reachable again (`to`: `reachable`); `reason` says what failed.
    Peer,
    /// Instances disagreed about a relay for longer than one probe interval plus two timeouts
    /// (`to`: `disagree`), or agree again (`to`: `agree`); `reason` gives each one's verdict.
    Disagreement,
    /// Whether a pinned relay's address showed a key its TLSA records pin changed (`from`/`to`:
    /// `unknown`, `matched`, `mismatched`); `reason` says what was shown. A relay found
    /// mismatched is an event even when its address was already down for another reason.
    Tlsa,
    /// smarthostd started: nothing is known of any relay until its first probe.
    Start,
    /// smarthostd stopped: nothing was probed or answered until the next start.
    Stop,
}

impl Kind {
    /// The name used in JSON, in filters and on the page.
    pub fn name(self) -> &'static str {
        match self {
            Kind::State => "state",
            Kind::Drain => "drain",
            Kind::Undrain => "undrain",
            Kind::Reload => "reload",
            Kind::ReloadFailed => "reload_failed",
            Kind::Mode => "mode",
            Kind::Listing => "listing",
            Kind::Standing => "standing",
            Kind::Peer => "peer",
            Kind::Disagreement => "disagreement",
            Kind::Tlsa => "tlsa",
            Kind::Start => "start",
            Kind::Stop => "stop",
        }
    }
}

/// `from`/`to` of a drain or an undrain.
pub(crate) const DRAINED: &str = "drained";
/// `from`/`to` of a drain or an undrain.
pub(crate) const UNDRAINED: &str = "undrained";

/// One change. Fields that do not apply to its kind are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (RFC 3339, UTC, milliseconds).
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// What changed; it decides which of the fields below are present.
    pub kind: Kind,
    /// The site; absent from `reload`, `reload_failed`, `start` and `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The host's name in its site, for `state`, `drain` and `undrain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The address as text: the probed one for `state`, the egress one for `listing`, the
    /// peer's admin address for `peer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The state before: the names each kind uses are on [`Kind`] (`drained` and `undrained` for
    /// drains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The state after, in the same names as `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why, in words: the probe result that decided a state, who or what ended a drain, what a
    /// reload changed or why it failed, what a list answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The end of a timed drain.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339_option"
    )]
    pub until: Option<SystemTime>,
}

impl Event {
    fn new(kind: Kind) -> Self {
        Self {
            time: SystemTime::now(),
            kind,
            site: None,
            host: None,
            address: None,
            from: None,
            to: None,
            reason: None,
            until: None,
        }
    }

    /// An address's verdict changed.
    pub fn state(
        site: &str,
        host: &str,
        address: IpAddr,
        from: &str,
        to: &str,
        reason: &str,
    ) -> Self {
        Self::address_change(Kind::State, site, host, address, from, to, reason)
    }

    /// A change of `kind` at one address of a host.
    fn address_change(
        kind: Kind,
        site: &str,
        host: &str,
        address: IpAddr,
        from: &str,
        to: &str,
        reason: &str,
    ) -> Self {
        Self {
            address: Some(address.to_string()),
            from: Some(from.into()),
            to: Some(to.into()),
            reason: Some(reason.into()),
            ..Self::new(kind).on(site, host)
        }
    }

    /// An operator drained `site/host` (again, when `was_drained`: a new end time).
    pub fn drain(
        site: &str,
        host: &str,
        was_drained: bool,
        until: Option<SystemTime>,
        reason: &str,
    ) -> Self {
        Self {
            from: Some(if was_drained { DRAINED } else { UNDRAINED }.into()),
            to: Some(DRAINED.into()),
            reason: Some(reason.into()),
            until,
            ..Self::new(Kind::Drain).on(site, host)
        }
    }

    /// The drain of `site/host` ended; `reason` says how.
    pub fn undrain(site: &str, host: &str, reason: &str) -> Self {
        Self {
            from: Some(DRAINED.into()),
            to: Some(UNDRAINED.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Undrain).on(site, host)
        }
    }

    /// A reload took effect; `outcome` is its reply.
    pub fn reload(outcome: &str) -> Self {
        Self {
            reason: Some(outcome.into()),
            ..Self::new(Kind::Reload)
        }
    }

    /// A reload was refused.
    pub fn reload_failed(error: &str) -> Self {
        Self {
            reason: Some(error.into()),
            ..Self::new(Kind::ReloadFailed)
        }
    }

    /// A site's answer changed mode.
    pub fn mode(site: &str, from: &str, to: &str, reason: &str) -> Self {
        Self {
            site: Some(site.into()),
            from: Some(from.into()),
            to: Some(to.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Mode)
        }
    }

    /// An egress address of `site` was listed on a blocklist, or no longer is.
    pub fn listing(site: &str, address: IpAddr, listed: bool, reason: &str) -> Self {
        Self {
            site: Some(site.into()),
            address: Some(address.to_string()),
            from: Some(if listed { "clean" } else { "listed" }.into()),
            to: Some(if listed { "listed" } else { "clean" }.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Listing)
        }
    }

    /// A site's standing from its blocklist verdicts changed.
    pub fn standing(site: &str, from: &str, to: &str, reason: &str) -> Self {
        Self {
            site: Some(site.into()),
            from: Some(from.into()),
            to: Some(to.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Standing)
        }
    }

    /// A peer became unreachable for a minute (`unreachable`), or is reachable again.
    pub fn peer(peer: &str, unreachable: bool, reason: &str) -> Self {
        let (from, to) = if unreachable {
            ("reachable", "unreachable")
        } else {
            ("unreachable", "reachable")
        };
        Self {
            address: Some(peer.into()),
            from: Some(from.into()),
            to: Some(to.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Peer)
        }
    }

    /// Instances began to disagree about `site/host` (`disagree`), or agree again.
    pub fn disagreement(site: &str, host: &str, disagree: bool, reason: &str) -> Self {
        let (from, to) = if disagree {
            ("agree", "disagree")
        } else {
            ("disagree", "agree")
        };
        Self {
            from: Some(from.into()),
            to: Some(to.into()),
            reason: Some(reason.into()),
            ..Self::new(Kind::Disagreement).on(site, host)
        }
    }

    /// Whether the key shown at `address` of the pinned relay `site/host` matches its TLSA
    /// records changed.
    pub fn tlsa(
        site: &str,
        host: &str,
        address: IpAddr,
        from: &str,
        to: &str,
        reason: &str,
    ) -> Self {
        Self::address_change(Kind::Tlsa, site, host, address, from, to, reason)
    }

    /// smarthostd started.
    pub fn start() -> Self {
        Self {
            reason: Some(format!("smarthostd {} started", env!("CARGO_PKG_VERSION"))),
            ..Self::new(Kind::Start)
        }
    }

    /// smarthostd stopped.
    pub fn stop() -> Self {
        Self {
            reason: Some("smarthostd stopped".into()),
            ..Self::new(Kind::Stop)
        }
    }

    /// The same event at another time (history read back, tests with explicit times).
    pub fn at(self, time: SystemTime) -> Self {
        Self { time, ..self }
    }

    fn on(self, site: &str, host: &str) -> Self {
        Self {
            site: Some(site.into()),
            host: Some(host.into()),
            ..self
        }
    }

    /// Whether this event is about `site/host` (any letter case).
    pub fn is_about(&self, site: &str, host: &str) -> bool {
        same(self.site.as_deref(), site) && same(self.host.as_deref(), host)
    }

    /// Whether this event is about `site` (any letter case).
    pub fn is_of_site(&self, site: &str) -> bool {
        same(self.site.as_deref(), site)
    }
}

fn same(field: Option<&str>, wanted: &str) -> bool {
    field.is_some_and(|f| f.eq_ignore_ascii_case(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_event_is_one_json_object_with_only_the_fields_that_apply() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_750_000_000_123);
        let e = Event::state(
            "oxford",
            "mail1",
            "192.0.2.1".parse().unwrap(),
            "up",
            "down",
            "connection refused",
        )
        .at(t);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2025-06-15T15:06:40.123Z","kind":"state","site":"oxford","host":"mail1","address":"192.0.2.1","from":"up","to":"down","reason":"connection refused"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        let r = serde_json::to_string(&Event::reload_failed("bad").at(t)).unwrap();
        assert_eq!(
            r,
            r#"{"time":"2025-06-15T15:06:40.123Z","kind":"reload_failed","reason":"bad"}"#
        );
        let d = Event::drain("oxford", "mail1", false, Some(t), "by operator").at(t);
        let back: Event = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(back.is_about("OXFORD", "Mail1") && !back.is_about("oxford", "mail2"));
    }
}
