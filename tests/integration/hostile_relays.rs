//! Relays that do not play by RFC 5321: ones that answer before they are asked (a reply is the
//! answer to the command written before it, section 4.2), ones that inject plain text around
//! STARTTLS, and old ones that only know HELO (section 3.2), which senders fall back to.

use std::sync::atomic::Ordering;
use std::time::Duration;

use smarthostd::events::Kind;
use smarthostd::probe::smtp::{Passed, ProbeSettings};
use smarthostd::probe::tls;

use crate::fake_smtp::{Behavior, FakeSmtp, tls_server_config};
use crate::support::*;

/// The probe of one fake host with `behavior`.
async fn outcome(behavior: Behavior, starttls: bool) -> Result<Passed, String> {
    let settings = ProbeSettings {
        tls: starttls.then(|| tls::client_config(false, None).unwrap()),
        ..probe_settings(Duration::from_secs(1))
    };
    probe_outcome(behavior, &settings).await
}

/// The reason the status gives for the first address of host `host` of site `site`.
async fn reason(server: &TestServer, site: usize, host: usize) -> Option<String> {
    let status = server.control.status().await.unwrap();
    status.sites[site].hosts[host].addresses[0].reason.clone()
}

/// A greeting in two segments, the second carrying an EHLO reply that nothing asked for.
const SPLIT: &[&str] = &["220-x\r\n", "220 x\r\n250 x\r\n"];

const VIOLATION: &str =
    "sent \"250 x\" before EHLO was sent: pipelining violation (RFC 5321 section 4.2)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_answers_ehlo_before_it_is_sent_is_down_as_a_pipelining_violation() {
    // The relay of the report: greeting and a 250 at once, then it hangs up.
    assert_eq!(
        outcome(Behavior::PretalkThenClose("220 x\r\n250 x\r\n"), false).await,
        Err(VIOLATION.into())
    );
    // The same in two segments: the greeting's last line comes with the early reply, so that
    // the reply is there before EHLO could be written however the machine schedules the probe
    // (bytes that come after EHLO was written cannot be told from its reply: the probe's own
    // tests cover bytes that wait on the socket). The relay then answers every command as if
    // nothing happened.
    assert_eq!(
        outcome(Behavior::Pretalk(SPLIT), false).await,
        Err(VIOLATION.into())
    );

    // Served by the DNS: neither relay is ever given to senders.
    let at_once = FakeSmtp::start(Behavior::PretalkThenClose("220 x\r\n250 x\r\n")).await;
    let split = FakeSmtp::start(Behavior::Pretalk(SPLIT)).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
        at_once.host_entry("mail1"),
        split.host_entry("mail2"),
        cambridge.host_entry("mail1")
    ));
    let server = TestServer::start(&setup).await;
    eventually("six probes of each relay", || async {
        assert_eq!(
            server.mx("oxford.smarthost.internal").await,
            vec![mx(20, "mail1.cambridge")],
            "a relay that talks before it is asked is never served"
        );
        at_once.connections.load(Ordering::Relaxed) >= 6
            && split.connections.load(Ordering::Relaxed) >= 6
    })
    .await;
    for host in [0, 1] {
        let why = reason(&server, 0, host).await.unwrap();
        assert!(why.contains("pipelining violation"), "{why}");
    }
}

#[tokio::test]
async fn a_relay_that_hangs_up_before_answering_ehlo_is_down_with_the_reason() {
    let why = outcome(Behavior::PretalkThenClose("220 x\r\n"), false)
        .await
        .unwrap_err();
    // Before EHLO left, or after: either way it was never answered.
    assert!(
        why == "connection closed before EHLO was sent"
            || why == "connection closed (EHLO)"
            || why.starts_with("connection reset"),
        "{why}"
    );
    assert_eq!(
        outcome(Behavior::CloseOnEhlo, false).await,
        Err("connection closed (EHLO)".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_after_the_starttls_reply_is_refused_not_read_as_tls() {
    let config = tls_server_config();
    assert_eq!(
        outcome(Behavior::StarttlsInjecting(config.clone()), true).await,
        Err("sent \"250 2.0.0 injected\" before the TLS handshake began: pipelining violation (RFC 5321 section 4.2)".into())
    );
    // The same relay without the injected line passes.
    assert_eq!(
        outcome(Behavior::Starttls(config), true).await,
        Ok(Passed::default())
    );
}

#[tokio::test]
async fn a_slow_relay_that_splits_every_reply_into_pieces_passes() {
    assert_eq!(
        outcome(Behavior::Trickle(Duration::from_millis(5)), false).await,
        Ok(Passed::default())
    );
}

const NOT_RECOGNIZED: &str = "502 5.5.2 command not recognized\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_ehlo_and_accepts_helo_is_served_at_mx_10() {
    let note = "EHLO refused (\"502 5.5.2 command not recognized\"), HELO accepted";
    assert_eq!(
        outcome(Behavior::EhloRefused(NOT_RECOGNIZED), false).await,
        Ok(Passed {
            note: Some(note.into())
        })
    );
    // RFC 821's reply to a verb it does not know.
    assert!(
        outcome(Behavior::EhloRefused("500 unrecognized command\r\n"), false)
            .await
            .is_ok()
    );

    let old = FakeSmtp::start(Behavior::EhloRefused(NOT_RECOGNIZED)).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let server = TestServer::start(&Setup::new(two_sites(&old, &cambridge))).await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford"), mx(20, "mail1.cambridge")]
    );
    let events = server.control.events().list(&Default::default());
    let up = events
        .iter()
        .find(|e| e.kind == Kind::State && e.is_of_site("oxford"))
        .expect("the first verdict is an event");
    assert_eq!(up.to.as_deref(), Some("up"));
    let why = up.reason.as_deref().unwrap();
    assert!(why.ends_with(note), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helo_only_relay_stays_down_when_starttls_is_required() {
    let why = outcome(Behavior::EhloRefused(NOT_RECOGNIZED), true)
        .await
        .unwrap_err();
    assert_eq!(
        why,
        "EHLO answered \"502 5.5.2 command not recognized\": STARTTLS is required, and a relay that does not know EHLO cannot offer it"
    );

    let old = FakeSmtp::start(Behavior::EhloRefused(NOT_RECOGNIZED)).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    let setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{{ name = \"mail1\", addresses = [\"{}\"], port = {}, starttls = true }}]\n\
         [sites.cambridge]\nhosts = [{}]\n",
        old.addr.ip(),
        old.addr.port(),
        cambridge.host_entry("mail1")
    ));
    let server = TestServer::start(&setup).await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    assert_eq!(reason(&server, 0, 0).await, Some(why));
}

#[tokio::test]
async fn an_ehlo_refused_for_its_argument_or_by_policy_gets_no_helo() {
    // 501 and 504 are about the name given, which HELO would repeat; 550 refuses us.
    for reply in [
        "501 5.5.4 invalid domain name\r\n",
        "504 5.5.2 need fully-qualified hostname\r\n",
        "550 5.7.1 you are not welcome\r\n",
        "421 4.3.2 shutting down\r\n",
    ] {
        let why = outcome(Behavior::EhloRefused(reply), false)
            .await
            .unwrap_err();
        assert_eq!(
            why,
            format!("EHLO answered \"{}\"", reply.trim_end()),
            "{reply}"
        );
    }
}
