//! What instances tell each other, and the one place a peer's words are checked:
//!
//! - a **view** (`GET /cluster/view`, JSON): each relay's verdict and reason, each site's answer
//!   (mode and exchanges), the fingerprint of the config, the digest of the drains and the
//!   latest reload asked for — what `/status` shows, compact;
//! - the **drains** (`GET` and `POST /cluster/drains`): the drained-hosts file's own text, every
//!   register with its stamp, read by the same parser, but whole or not at all.
//!
//! Everything read from a peer passes [`View::parse`] or [`parse_drains`]: sizes bounded, names
//! of the zone's form, verdicts and modes from a fixed set, stamps well formed, and free text
//! (reasons, exchanges, and what a refusal quotes of it) made safe by
//! [`network_text::clean`] before it reaches a log, a page, an event or a terminal.

use serde::{Deserialize, Serialize};

use crate::answer::Mode;
use crate::health::status::StatusReport;
use crate::network_text;
use crate::state::drains::Drains;
use crate::state::hlc::{Stamp, valid_origin};

/// The most relays (and sites) a view may list.
const MAX_ITEMS: usize = 100_000;
/// The most exchanges a site's answer may list.
const MAX_EXCHANGES: usize = 1_000;
/// The longest free text kept from a peer, in characters.
pub const MAX_TEXT: usize = 200;

/// One instance's view of every relay and site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The instance's name for itself.
    pub instance: String,
    /// The fingerprint of its configuration ([`fingerprint`](super::fingerprint)).
    pub fingerprint: String,
    /// SHA-256 of its drains' text: equal digests, equal drains.
    pub drains: String,
    /// The latest reload asked for that it knows of (`millis.counter@instance`).
    #[serde(default)]
    pub reload: Option<String>,
    /// Its first probe round is done: its verdicts mean something.
    pub ready: bool,
    /// Every relay it probes, in config order.
    pub relays: Vec<RelayView>,
    /// Every site's answer, in config order.
    pub sites: Vec<SiteView>,
}

/// One relay as one instance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayView {
    /// The site's name.
    pub site: String,
    /// The host's name in its site.
    pub host: String,
    /// `up`, `down`, `unknown` (no verdict yet) or `drained`.
    pub verdict: String,
    /// Why it is down (the last failed probe), or how long it is drained.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One site's answer as one instance serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    /// The site's name.
    pub site: String,
    /// How the answer is made: local hosts lead, remote only, failsafe.
    pub mode: Mode,
    /// The MX records served, `<preference> <exchange>`, in order.
    pub answer: Vec<String>,
}

/// The verdicts a relay can have.
const VERDICTS: [&str; 4] = ["up", "down", "unknown", "drained"];

impl View {
    /// This instance's view, from its status report and what the cluster knows.
    pub fn of(
        report: &StatusReport,
        instance: &str,
        fingerprint: &str,
        drains: &str,
        reload: Option<&Stamp>,
    ) -> Self {
        let relays = (report.sites.iter())
            .flat_map(|site| site.hosts.iter().map(move |h| (site, h)))
            .map(|(site, h)| RelayView {
                site: site.name.clone(),
                host: h.name.clone(),
                verdict: h.state.clone(),
                reason: match h.state.as_str() {
                    "drained" => Some(match &h.drained_until {
                        Some(until) => format!("until {until}"),
                        None => "until undrained".into(),
                    }),
                    "down" => (h.addresses.iter())
                        .find_map(|a| a.reason.clone())
                        .or_else(|| h.resolve_error.clone()),
                    _ => None,
                },
            })
            .collect();
        let sites = (report.sites.iter())
            .map(|s| SiteView {
                site: s.name.clone(),
                mode: s.mode,
                answer: (s.answer.iter())
                    .map(|mx| format!("{} {}", mx.preference, mx.exchange))
                    .collect(),
            })
            .collect();
        Self {
            instance: instance.to_string(),
            fingerprint: fingerprint.to_string(),
            drains: drains.to_string(),
            reload: reload.map(Stamp::to_string),
            ready: report.ready,
            relays,
            sites,
        }
    }

    /// A peer's view from its JSON, checked; free text cleaned.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        // The parser's error may quote the peer's text (an unknown mode, a string where a list
        // belongs).
        let mut view: View = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a view: {}", clean(&e.to_string())))?;
        let bad = |what: &str| Err(format!("not a view: {what}"));
        if !valid_origin(&view.instance) {
            return bad("the instance's name");
        }
        if !is_digest(&view.fingerprint) || !is_digest(&view.drains) {
            return bad("a digest");
        }
        if view
            .reload
            .as_deref()
            .is_some_and(|r| Stamp::parse(r).is_none())
        {
            return bad("the reload stamp");
        }
        if view.relays.len() > MAX_ITEMS || view.sites.len() > MAX_ITEMS {
            return bad("too many relays or sites");
        }
        for r in &mut view.relays {
            if !is_label(&r.site) || !is_label(&r.host) || !VERDICTS.contains(&r.verdict.as_str()) {
                return bad("a relay");
            }
            r.reason = r.reason.as_deref().map(clean);
        }
        for s in &mut view.sites {
            if !is_label(&s.site) || s.answer.len() > MAX_EXCHANGES {
                return bad("a site");
            }
            s.answer = s.answer.iter().map(|a| clean(a)).collect();
        }
        Ok(view)
    }

    /// The latest reload it knows of.
    pub fn reload_stamp(&self) -> Option<Stamp> {
        self.reload.as_deref().and_then(Stamp::parse)
    }

    /// Its verdict on `site/host`, if it probes that relay.
    pub fn relay(&self, site: &str, host: &str) -> Option<&RelayView> {
        (self.relays.iter())
            .find(|r| r.site.eq_ignore_ascii_case(site) && r.host.eq_ignore_ascii_case(host))
    }
}

/// A peer's drains from their text, whole or refused: a line that does not read is an error
/// here, where the file's own reader would drop it and keep the rest.
pub fn parse_drains(bytes: &[u8]) -> Result<Drains, String> {
    let (drains, dropped) = Drains::parse(bytes);
    match dropped.first() {
        None => Ok(drains),
        Some(problem) => Err(format!("not a drains table: {}", clean(problem))),
    }
}

/// Text from a peer made safe where it enters ([`network_text::clean`]), at most
/// [`MAX_TEXT`] characters.
pub fn clean(text: &str) -> String {
    network_text::clean(text, MAX_TEXT)
}

fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View {
            instance: "127.0.0.1:8053".into(),
            fingerprint: "a".repeat(64),
            drains: "b".repeat(64),
            reload: Some("5.0@127.0.0.1:8053".into()),
            ready: true,
            relays: vec![RelayView {
                site: "oxford".into(),
                host: "mail1".into(),
                verdict: "down".into(),
                reason: Some("connection refused".into()),
            }],
            sites: vec![SiteView {
                site: "oxford".into(),
                mode: Mode::RemoteOnly,
                answer: vec!["20 mail1.cambridge.smarthost.internal.".into()],
            }],
        }
    }

    #[test]
    fn a_view_reads_back_and_its_free_text_is_cleaned() {
        let v = view();
        assert_eq!(View::parse(&serde_json::to_vec(&v).unwrap()).unwrap(), v);
        let mut hostile = view();
        hostile.relays[0].reason = Some(format!("refused\r\n\u{1b}[31mFORGED {}", "x".repeat(500)));
        let read = View::parse(&serde_json::to_vec(&hostile).unwrap()).unwrap();
        let reason = read.relays[0].reason.clone().unwrap();
        assert!(
            reason.starts_with("refused\\r\\n\\u{1b}[31mFORGED"),
            "{reason}"
        );
        assert!(reason.chars().count() < 250, "{reason}");
    }

    #[test]
    fn a_refused_view_quotes_none_of_its_text_raw() {
        let mut hostile = serde_json::to_value(view()).unwrap();
        let forged = format!("\r\n\u{1b}[2Jsmarthostd: FORGED\u{202e}{}", "x".repeat(500));
        hostile["sites"][0]["mode"] = serde_json::Value::String(forged);
        let e = View::parse(&serde_json::to_vec(&hostile).unwrap()).unwrap_err();
        assert!(
            e.contains("FORGED"),
            "the parser quotes the peer's text: {e}"
        );
        assert!(
            !e.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{e:?}"
        );
        assert!(e.chars().count() < 250, "{e}");
    }

    #[test]
    fn a_view_with_a_bad_name_verdict_digest_or_stamp_is_refused() {
        let spoil: [fn(&mut View); 6] = [
            |v| v.instance = "a b".into(),
            |v| v.fingerprint = "z".repeat(64),
            |v| v.reload = Some("soon".into()),
            |v| v.relays[0].verdict = "fine".into(),
            |v| v.relays[0].site = "../etc".into(),
            |v| v.sites[0].answer = vec![String::new(); MAX_EXCHANGES + 1],
        ];
        for f in spoil {
            let mut v = view();
            f(&mut v);
            assert!(
                View::parse(&serde_json::to_vec(&v).unwrap()).is_err(),
                "{v:?}"
            );
        }
        assert!(View::parse(b"{").is_err());
        assert!(View::parse(b"[]").is_err());
    }

    #[test]
    fn drains_from_a_peer_are_whole_or_refused() {
        assert!(parse_drains(b"oxford/mail1 stamp=5.0@a:1\n").is_ok());
        let e = parse_drains(b"oxford/mail1\nnot a key\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
