//! What a listing does with `action = "demote"`: the listed site's relays behind clean sites,
//! its own name led by a clean one, the hold after a delisting, drains and views beside it, no
//! warm share for a listed relay, and the log of it all.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_demote_a_listed_site_moves_behind_clean_sites_and_its_name_leads_with_a_clean_one() {
    let (list, _, _relay) = list_server(OXFORD_V4).await;
    let mut sites = Relays::sites(1, 1, 1).await;
    let setup = checked(&sites, "", reputation(list.dns, LIST_ZONE, "demote", "1h"));
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
    assert_eq!(ips, vec![sites.cambridge[0].addr.ip()]);
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
    sites.cambridge[0].stop();
    sites.london[0].stop();
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
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(&sites, "", reputation(list.dns, LIST_ZONE, "demote", "1h"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delisted_site_stays_demoted_for_its_hold_then_leads_again() {
    let (list, mut list_setup, _relay) = list_server(OXFORD_V4).await;
    let sites = Relays::sites(1, 1, 1).await;
    let hold = Duration::from_secs(2);
    let setup = checked(&sites, "", reputation(list.dns, LIST_ZONE, "demote", "2s"));
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
async fn demotion_works_with_drains_and_views() {
    let list = Blocklist::start().await;
    list.set("7.100.51.198.bl.test.", "127.0.0.2", None);
    let sites = Relays::sites(1, 1, 1).await;
    // The test's queries come from 127.0.0.1: oxford's view.
    let mut setup = checked(
        &sites,
        "clients = [\"127.0.0.1/32\"]",
        reputation(list.addr, "bl.test", "demote", "1h"),
    );
    setup.rest.push_str("[views]\nnames = [\"relay\"]\n");
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
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(
        &sites,
        "fallback = [\"cambridge\", \"london\"]\nwarm_share = 0.5",
        reputation(list.addr, "bl.test", "demote", "0s"),
    );
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
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(&sites, "", reputation(list.dns, LIST_ZONE, "demote", "1s"));
    let process = ServerProcess::spawn(&setup, None);
    let seen = &process;
    let leads = |host: &'static str| async move {
        let answer = mx_set(&udp(seen.dns, "oxford.smarthost.internal", RecordType::MX).await);
        if answer.first() == Some(&mx(10, host)) {
            Ok(())
        } else {
            Err(format!("{answer:?}\n{}", seen.log_text()))
        }
    };
    eventually("demoted", || leads("mail1.cambridge")).await;
    list_setup.zone_file = ZONE.to_string();
    list.rewrite(&list_setup);
    list.control.reload().await.unwrap();
    eventually("led again", || leads("mail1.oxford")).await;
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
