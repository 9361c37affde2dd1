//! Blocklist checks of the sites' egress addresses against real DNS blocklists on loopback: a
//! second smarthostd serving a blocklist zone from a zone file, or a responder the test
//! changes as it goes (SERVFAIL, silence). Nothing leaves loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use smarthostd::health::status::{SiteReputation, StatusReport};
use smarthostd::state::drains::Drain;

use crate::blocklist::{Blocklist, Mode};
use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

/// The blocklist zone the second smarthostd serves, under its origin.
const LIST_ZONE: &str = "bl.smarthost.internal";
/// 198.51.100.7 (oxford's egress) listed, with a reason.
const OXFORD_V4: &str = "7.100.51.198.bl IN A 127.0.0.2\n\
7.100.51.198.bl IN TXT \"listed for testing: https://bl.example/198.51.100.7\"\n";
/// 2001:db8::25 (oxford's other egress) listed, by its nibble name.
const OXFORD_V6: &str =
    "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl IN A 127.0.0.4\n";
/// 198.51.100.8 (cambridge's egress) answered with Spamhaus's "public resolver" error code.
const CAMBRIDGE_REFUSED: &str = "8.100.51.198.bl IN A 127.255.255.254\n";

/// Three sites on healthy fake relays; oxford sends from 198.51.100.7 and 2001:db8::25,
/// cambridge from 198.51.100.8, london from 198.51.100.9.
struct Sites {
    oxford: FakeSmtp,
    cambridge: FakeSmtp,
    london: FakeSmtp,
}

impl Sites {
    async fn start() -> Self {
        Self {
            oxford: FakeSmtp::start(Behavior::Healthy).await,
            cambridge: FakeSmtp::start(Behavior::Healthy).await,
            london: FakeSmtp::start(Behavior::Healthy).await,
        }
    }

    /// The `[sites.*]` tables; `oxford_extra` goes into oxford's.
    fn config(&self, oxford_extra: &str) -> String {
        format!(
            "[sites.oxford]\nhosts = [{}]\negress = [\"198.51.100.7\", \"2001:db8::25\"]\n{oxford_extra}\n\
             [sites.cambridge]\nhosts = [{}]\negress = [\"198.51.100.8\"]\n\
             [sites.london]\nhosts = [{}]\negress = [\"198.51.100.9\"]\n",
            self.oxford.host_entry("mail1"),
            self.cambridge.host_entry("mail1"),
            self.london.host_entry("mail1")
        )
    }
}

/// `[reputation]` asking `resolver` about the test list every second.
fn reputation(resolver: SocketAddr, zone: &str, action: &str, hold: &str) -> String {
    format!(
        "[reputation]\nlists = [{{ zone = \"{zone}\", name = \"bl\" }}]\nresolver = [\"{resolver}\"]\n\
         interval = \"1s\"\ntimeout = \"300ms\"\naction = \"{action}\"\nhold = \"{hold}\"\n"
    )
}

/// A second smarthostd serving the blocklist zone with `records`.
async fn list_server(records: &str) -> (TestServer, Setup, FakeSmtp) {
    let relay = FakeSmtp::start(Behavior::Healthy).await;
    let mut setup = Setup::new(format!(
        "[sites.x]\nhosts = [{}]\n",
        relay.host_entry("mail1")
    ));
    setup.zone_file = format!("{ZONE}{records}");
    (TestServer::start(&setup).await, setup, relay)
}

/// Polls the status until `want` holds for it, or fails after [`DEADLINE`].
async fn wait_status(
    server: &TestServer,
    what: &str,
    want: impl Fn(&StatusReport) -> bool,
) -> StatusReport {
    let start = Instant::now();
    loop {
        let status = server.control.status().await.unwrap();
        if want(&status) {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "never {what}: {:#?}",
            status.sites
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The blocklist status of site `i`.
fn rep(status: &StatusReport, i: usize) -> &SiteReputation {
    status.sites[i]
        .reputation
        .as_ref()
        .expect("a blocklist status")
}

/// The value of the sample `name{labels}` in a scrape (labels in the exporter's order).
fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The TXT strings at `name`.
async fn txt(server: SocketAddr, name: &str) -> Vec<String> {
    udp(server, name, RecordType::TXT)
        .await
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_warn_a_listing_is_logged_counted_and_shown_and_the_answers_stay() {
    let (list, _, _relay) =
        list_server(&format!("{OXFORD_V4}{OXFORD_V6}{CAMBRIDGE_REFUSED}")).await;
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.dns, LIST_ZONE, "warn", "1h")
    ));
    let server = TestServer::start(&setup).await;
    let status = wait_status(&server, "listed on both families", |s| {
        s.sites[0]
            .reputation
            .as_ref()
            .is_some_and(|r| r.egress.iter().all(|e| e.lists[0].verdict == "listed"))
            && rep(s, 1).egress[0].lists[0].problem.is_some()
    })
    .await;
    let oxford = rep(&status, 0);
    assert_eq!(oxford.standing, "listed");
    assert!(!oxford.demoted, "warn never demotes");
    let v4 = &oxford.egress[0].lists[0];
    assert_eq!(v4.code, Some("127.0.0.2".parse().unwrap()));
    assert_eq!(
        v4.reason.as_deref(),
        Some("listed for testing: https://bl.example/198.51.100.7")
    );
    assert_eq!(
        oxford.egress[1].address,
        "2001:db8::25".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        oxford.egress[1].lists[0].code,
        Some("127.0.0.4".parse().unwrap())
    );
    // The "public resolver" error code is a list error, never a listing.
    let cambridge = rep(&status, 1);
    assert_eq!(cambridge.standing, "clean");
    assert_eq!(cambridge.egress[0].lists[0].verdict, "unknown");
    let problem = cambridge.egress[0].lists[0].problem.as_deref().unwrap();
    assert!(
        problem.contains("127.255.255.254") && problem.contains("public or open resolvers"),
        "{problem}"
    );
    assert_eq!(rep(&status, 2).egress[0].lists[0].verdict, "clean");

    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.oxford"),
            mx(20, "mail1.cambridge"),
            mx(20, "mail1.london")
        ]
    );
    assert!(
        txt(server.dns, "oxford.smarthost.internal")
            .await
            .is_empty()
    );
    let scrape = server.control.metrics.encode();
    for (series, want) in [
        (
            "smarthostd_egress_listed{site=\"oxford\",address=\"198.51.100.7\",list=\"bl\"}",
            1.0,
        ),
        (
            "smarthostd_egress_listed{site=\"oxford\",address=\"2001:db8::25\",list=\"bl\"}",
            1.0,
        ),
        (
            "smarthostd_egress_listed{site=\"cambridge\",address=\"198.51.100.8\",list=\"bl\"}",
            0.0,
        ),
        ("smarthostd_site_demoted{site=\"oxford\"}", 0.0),
    ] {
        assert_eq!(sample(&scrape, series), Some(want), "{series}\n{scrape}");
    }
    for result in ["listed", "clean", "error"] {
        let n = sample(
            &scrape,
            &format!("smarthostd_reputation_lookups_total{{list=\"bl\",result=\"{result}\"}}"),
        );
        assert!(n.is_some_and(|n| n >= 1.0), "{result}: {scrape}");
    }
    // The status page and `smarthostd status` say it.
    let page = http_get(server.admin, "/", DEADLINE).await.unwrap();
    assert!(
        page.contains("egress 198.51.100.7 listed on bl (127.0.0.2)"),
        "{page}"
    );
    let table = cli(&["status", "--admin", &server.admin.to_string()]).await;
    assert!(
        table.contains("\n  egress 2001:db8::25 listed on bl (127.0.0.4)\n"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_demote_a_listed_site_moves_behind_clean_sites_and_its_name_leads_with_a_clean_one() {
    let (list, _, _relay) = list_server(OXFORD_V4).await;
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.dns, LIST_ZONE, "demote", "1h")
    ));
    let server = TestServer::start(&setup).await;
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.first() == Some(&mx(10, "mail1.cambridge"))
        })
        .await;
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.cambridge"),
            mx(20, "mail1.oxford"),
            mx(30, "mail1.london")
        ]
    );
    for other in ["cambridge", "london"] {
        let answer = server.mx(&format!("{other}.smarthost.internal")).await;
        assert_eq!(
            answer.last(),
            Some(&mx(30, "mail1.oxford")),
            "{other}: {answer:?}"
        );
        assert_eq!(answer.len(), 3);
    }
    // An MTA that skips MX connects to the site name's own addresses: the leading site's.
    let a = udp(server.dns, "oxford.smarthost.internal", RecordType::A).await;
    let ips: Vec<_> = a.answers.iter().filter_map(|r| r.data.ip_addr()).collect();
    assert_eq!(ips, vec![sites.cambridge.addr.ip()]);
    // The answer says why, and explain reads it.
    let note = txt(server.dns, "oxford.smarthost.internal").await;
    assert_eq!(
        note,
        vec![
            "smarthostd: oxford demoted: 198.51.100.7 listed on bl: listed for testing: https://bl.example/198.51.100.7"
        ]
    );
    assert!(
        txt(server.dns, "london.smarthost.internal").await[0]
            .starts_with("smarthostd: oxford demoted")
    );
    let explained = smarthostd::cli::explain("oxford.smarthost.internal", Some(server.dns), None)
        .await
        .unwrap();
    assert_eq!(explained.notes.len(), 1);
    let text = cli(&[
        "explain",
        "oxford.smarthost.internal",
        "--server",
        &server.dns.to_string(),
    ])
    .await;
    assert!(
        text.contains("1. mail1.cambridge.smarthost.internal.")
            && text.contains("note: a blocklist listing shaped this answer: oxford demoted: 198.51.100.7 listed on bl"),
        "{text}"
    );
    let status = server.control.status().await.unwrap();
    assert!(rep(&status, 0).demoted);
    assert_eq!(rep(&status, 0).answer_shaped_by, vec!["oxford"]);
    assert_eq!(rep(&status, 1).answer_shaped_by, vec!["oxford"]);
    let scrape = server.control.metrics.encode();
    assert_eq!(
        sample(&scrape, "smarthostd_site_demoted{site=\"oxford\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "smarthostd_site_answer_mode{site=\"oxford\"}"),
        Some(0.0)
    );

    // The demotion never removes the last healthy relay: with cambridge's and london's relays
    // gone, oxford's own lead its name again, and stay in the others' (with nothing to be
    // behind, as health alone would have them, and no note).
    drop(sites.cambridge);
    drop(sites.london);
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m == [mx(10, "mail1.oxford")]
        })
        .await;
    server
        .wait_mx("cambridge.smarthost.internal", |m| {
            m == [mx(20, "mail1.oxford")]
        })
        .await;
    assert!(
        txt(server.dns, "cambridge.smarthost.internal")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_site_listed_there_is_no_clean_site_to_prefer_and_nothing_moves() {
    let every =
        format!("{OXFORD_V4}8.100.51.198.bl IN A 127.0.0.2\n9.100.51.198.bl IN A 127.0.0.3\n");
    let (list, _, _relay) = list_server(&every).await;
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.dns, LIST_ZONE, "demote", "1h")
    ));
    let server = TestServer::start(&setup).await;
    let status = wait_status(&server, "every site demoted", |s| {
        (0..3).all(|i| s.sites[i].reputation.as_ref().is_some_and(|r| r.demoted))
    })
    .await;
    assert!(
        status
            .sites
            .iter()
            .all(|s| rep_of(s).answer_shaped_by.is_empty())
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.oxford"),
            mx(20, "mail1.cambridge"),
            mx(20, "mail1.london")
        ]
    );
    assert!(
        txt(server.dns, "oxford.smarthost.internal")
            .await
            .is_empty()
    );
}

/// The standard output of `smarthostd ARGS`, which must succeed.
async fn cli(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_smarthostd"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn rep_of(site: &smarthostd::health::status::SiteStatus) -> &SiteReputation {
    site.reputation.as_ref().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delisted_site_stays_demoted_for_its_hold_then_leads_again() {
    let (list, mut list_setup, _relay) = list_server(OXFORD_V4).await;
    let sites = Sites::start().await;
    let hold = Duration::from_secs(2);
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.dns, LIST_ZONE, "demote", "2s")
    ));
    let server = TestServer::start(&setup).await;
    let demoted = vec![
        mx(10, "mail1.cambridge"),
        mx(20, "mail1.oxford"),
        mx(30, "mail1.london"),
    ];
    server
        .wait_mx("oxford.smarthost.internal", |m| m == demoted)
        .await;

    // A reload that keeps the checks keeps the verdicts: no moment of a clean answer.
    server.rewrite(&{
        let mut s = Setup::new(setup.rest.clone());
        s.zone = "degraded_ttl = \"10s\"\n".into();
        s
    });
    server.control.reload().await.unwrap();
    assert_eq!(server.mx("oxford.smarthost.internal").await, demoted);

    // Delisted: held, still demoted, until the hold runs out.
    list_setup.zone_file = ZONE.to_string();
    list.rewrite(&list_setup);
    list.control.reload().await.unwrap();
    let status = wait_status(&server, "held", |s| rep(s, 0).standing == "held").await;
    let held_seen = Instant::now();
    assert!(rep(&status, 0).demoted);
    assert!(rep(&status, 0).demoted_until.is_some());
    assert_eq!(rep(&status, 0).egress[0].lists[0].verdict, "clean");
    assert_eq!(server.mx("oxford.smarthost.internal").await, demoted);
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.first() == Some(&mx(10, "mail1.oxford"))
        })
        .await;
    let held_for = held_seen.elapsed();
    assert!(
        held_for >= hold - Duration::from_millis(500),
        "led again {held_for:?} after the delisting was seen; the hold is {hold:?}"
    );
    assert_eq!(
        server.mx("cambridge.smarthost.internal").await,
        vec![
            mx(10, "mail1.cambridge"),
            mx(20, "mail1.oxford"),
            mx(20, "mail1.london")
        ]
    );
    assert!(
        txt(server.dns, "oxford.smarthost.internal")
            .await
            .is_empty()
    );
    // The history tells it: the listing and its end, and the standing listed → held → clean.
    let reply = http_get(server.admin, "/events?site=oxford", Duration::from_secs(5))
        .await
        .expect("the events");
    let body = &reply[reply.find("\r\n\r\n").expect("headers") + 4..];
    let events: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    let of = |kind: &str| -> Vec<(String, String)> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (field("to"), field("reason"))
            })
            .collect()
    };
    let standings: Vec<String> = of("standing").into_iter().map(|(to, _)| to).collect();
    assert_eq!(standings, ["listed", "held", "clean"], "{body}");
    let listings = of("listing");
    assert_eq!(listings.len(), 2, "{body}");
    assert!(
        listings[0].0 == "listed" && listings[0].1.starts_with("listed on "),
        "{body}"
    );
    assert_eq!(listings[1].0, "clean", "{body}");
    let status = server.control.status().await.unwrap();
    assert_eq!(rep(&status, 0).standing, "clean");
    assert!(!rep(&status, 0).demoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_timeouts_and_error_codes_keep_the_last_verdict() {
    let list = Blocklist::start().await;
    let name = "7.100.51.198.bl.test.";
    list.set(name, "127.0.0.2", Some("spam trap hits"));
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.addr, "bl.test", "demote", "0s")
    ));
    let server = TestServer::start(&setup).await;
    let demoted = vec![
        mx(10, "mail1.cambridge"),
        mx(20, "mail1.oxford"),
        mx(30, "mail1.london"),
    ];
    server
        .wait_mx("oxford.smarthost.internal", |m| m == demoted)
        .await;

    let count = |result: &str| {
        sample(
            &server.control.metrics.encode(),
            &format!("smarthostd_reputation_lookups_total{{list=\"bl\",result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    for (mode, code, result, problem) in [
        (
            Mode::ServFail,
            None,
            "error",
            "the resolver answered SERVFAIL",
        ),
        (Mode::Silent, None, "timeout", "no answer in time"),
        (
            Mode::Answer,
            Some("127.255.255.255"),
            "error",
            "too many queries",
        ),
    ] {
        if let Some(code) = code {
            list.set(name, code, None);
        }
        list.mode(mode);
        let before = count(result);
        let start = Instant::now();
        // Two more rounds of this answer, so that it has surely been seen.
        while count(result) < before + 8.0 {
            assert!(start.elapsed() < DEADLINE, "no {result} counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            server.mx("oxford.smarthost.internal").await,
            demoted,
            "{result}"
        );
        let status = server.control.status().await.unwrap();
        let v4 = &rep(&status, 0).egress[0].lists[0];
        assert_eq!(v4.verdict, "listed", "{result}: the listing stands");
        assert_eq!(v4.reason.as_deref(), Some("spam trap hits"));
        assert!(v4.problem.as_deref().unwrap().contains(problem), "{v4:?}");
    }
    // A clean answer clears it; with no hold the site leads at once.
    list.remove(name);
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.first() == Some(&mx(10, "mail1.oxford"))
        })
        .await;
    let status = server.control.status().await.unwrap();
    assert_eq!(rep(&status, 0).egress[0].lists[0].problem, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_never_answers_gives_timeouts_and_no_verdict() {
    // A bound socket nobody reads: every query times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(silent.local_addr().unwrap(), "bl.test", "demote", "1h")
    ));
    let server = TestServer::start(&setup).await;
    let status = wait_status(&server, "a timeout", |s| {
        rep(s, 0).egress[0].lists[0].problem.as_deref() == Some("no answer in time")
    })
    .await;
    assert_eq!(rep(&status, 0).egress[0].lists[0].verdict, "unknown");
    assert!(!rep(&status, 0).demoted);
    let scrape = server.control.metrics.encode();
    assert!(
        sample(
            &scrape,
            "smarthostd_reputation_lookups_total{list=\"bl\",result=\"timeout\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![
            mx(10, "mail1.oxford"),
            mx(20, "mail1.cambridge"),
            mx(20, "mail1.london")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demotion_works_with_drains_and_views() {
    let list = Blocklist::start().await;
    list.set("7.100.51.198.bl.test.", "127.0.0.2", None);
    let sites = Sites::start().await;
    // The test's queries come from 127.0.0.1: oxford's view.
    let setup = Setup::new(format!(
        "{}{}[views]\nnames = [\"relay\"]\n",
        sites.config("clients = [\"127.0.0.1/32\"]"),
        reputation(list.addr, "bl.test", "demote", "1h")
    ));
    let server = TestServer::start(&setup).await;
    let demoted = vec![
        mx(10, "mail1.cambridge"),
        mx(20, "mail1.oxford"),
        mx(30, "mail1.london"),
    ];
    server
        .wait_mx("oxford.smarthost.internal", |m| m == demoted)
        .await;
    // Shared names answer as oxford's own name does, and the view name carries the note.
    assert_eq!(server.mx("smarthost.internal").await, demoted);
    assert_eq!(server.mx("relay.smarthost.internal").await, demoted);
    assert_eq!(txt(server.dns, "relay.smarthost.internal").await.len(), 1);
    assert!(
        txt(server.dns, "smarthost.internal").await.is_empty(),
        "the apex's TXT is the zone file's"
    );

    // Cambridge drained: the next healthy clean site leads instead.
    let drain = Some(Drain { until: None });
    server
        .control
        .drain("cambridge", "mail1", drain)
        .await
        .unwrap();
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.london"), mx(20, "mail1.oxford")]
    );
    // No clean site left to lead: oxford's own relays lead its name, never an empty answer.
    server
        .control
        .drain("london", "mail1", drain)
        .await
        .unwrap();
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(10, "mail1.oxford")]
    );
    server
        .control
        .drain("cambridge", "mail1", None)
        .await
        .unwrap();
    assert_eq!(
        server.mx("oxford.smarthost.internal").await[0],
        mx(10, "mail1.cambridge")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_warm_share_keeps_a_listed_relay_sending() {
    let list = Blocklist::start().await;
    list.set("8.100.51.198.bl.test.", "127.0.0.2", None);
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config("fallback = [\"cambridge\", \"london\"]\nwarm_share = 0.5"),
        reputation(list.addr, "bl.test", "demote", "0s")
    ));
    let server = TestServer::start(&setup).await;
    // Cambridge, the site oxford keeps warm, is listed: behind london, and never raised.
    let demoted = vec![
        mx(10, "mail1.oxford"),
        mx(20, "mail1.london"),
        mx(30, "mail1.cambridge"),
    ];
    server
        .wait_mx("oxford.smarthost.internal", |m| m == demoted)
        .await;
    for _ in 0..8 {
        assert_eq!(
            server.mx("oxford.smarthost.internal").await,
            demoted,
            "never raised"
        );
    }
    let warm = |scrape: &str| {
        sample(scrape, "smarthostd_warm_answers_total{site=\"oxford\"}").unwrap_or(0.0)
    };
    assert_eq!(warm(&server.control.metrics.encode()), 0.0);
    // Delisted (no hold): half the answers raise cambridge to 10 again.
    list.remove("8.100.51.198.bl.test.");
    server
        .wait_mx("oxford.smarthost.internal", |m| {
            m.contains(&mx(10, "mail1.cambridge"))
        })
        .await;
    assert!(warm(&server.control.metrics.encode()) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_tells_a_demotion_and_its_recovery() {
    let (list, mut list_setup, _relay) = list_server(OXFORD_V4).await;
    let sites = Sites::start().await;
    let setup = Setup::new(format!(
        "{}{}",
        sites.config(""),
        reputation(list.dns, LIST_ZONE, "demote", "1s")
    ));
    let process = ServerProcess::spawn(&setup, None);
    let answer =
        || async { mx_set(&udp(process.dns, "oxford.smarthost.internal", RecordType::MX).await) };
    let start = Instant::now();
    while answer().await.first() != Some(&mx(10, "mail1.cambridge")) {
        assert!(
            start.elapsed() < DEADLINE,
            "never demoted:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    list_setup.zone_file = ZONE.to_string();
    list.rewrite(&list_setup);
    list.control.reload().await.unwrap();
    let start = Instant::now();
    while answer().await.first() != Some(&mx(10, "mail1.oxford")) {
        assert!(
            start.elapsed() < DEADLINE,
            "never led again:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = process.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("blocklist") || l.contains("demoted") || l.contains("hold"))
        .collect();
    let find = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line with {what:?}:\n{}", lines.join("\n")))
    };
    let listed = find("egress address listed on a blocklist");
    assert!(lines[listed].contains("\"level\":\"WARN\""));
    for field in [
        "\"site\":\"oxford\"",
        "\"address\":\"198.51.100.7\"",
        "\"list\":\"bl\"",
        "listed for testing",
    ] {
        assert!(
            lines[listed].contains(field),
            "{field} in {}",
            lines[listed]
        );
    }
    let demoted = find("site demoted");
    let unlisted = find("egress address no longer listed");
    let held = find("stays demoted until its hold runs out");
    let back = find("site no longer demoted");
    assert!(
        listed <= demoted && demoted < unlisted && unlisted <= held && held < back,
        "{}",
        lines.join("\n")
    );
    eprintln!("{}", lines.join("\n"));
}

#[test]
fn check_config_says_what_nothing_checks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smarthost.toml");
    let sites = "[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.1.11\"] }]\negress = [\"1.2.3.4\"]\n";
    std::fs::write(&config, Setup::new(sites).render()).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let run = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smarthostd"))
            .arg("check-config")
            .arg(path)
            .output()
            .unwrap()
    };
    let out = run(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: sites oxford have egress addresses but there is no [reputation] table: no blocklist is checked"),
        "{stdout}"
    );
    std::fs::write(
        &config,
        format!(
            "{}[reputation]\naction = \"demote\"\n",
            Setup::new(sites).render()
        ),
    )
    .unwrap();
    let out = run(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = Setup::new(sites).render().lines().count() + 2;
    assert!(
        stderr.contains(&format!("smarthost.toml:{line}:"))
            && stderr.contains("reputation.action: \"demote\" needs at least one list"),
        "{stderr}"
    );
}
