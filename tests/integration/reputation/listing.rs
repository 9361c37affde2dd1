//! What a lookup finds and what is kept of it: a listing logged, counted and shown while the
//! answers stay (`action = "warn"`); SERVFAIL, silence and a list's error codes that keep the
//! last verdict; and what `check-config` says nothing checks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_warn_a_listing_is_logged_counted_and_shown_and_the_answers_stay() {
    let (list, _, _relay) =
        list_server(&format!("{OXFORD_V4}{OXFORD_V6}{CAMBRIDGE_REFUSED}")).await;
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(&sites, "", reputation(list.dns, LIST_ZONE, "warn", "1h"));
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
async fn servfail_timeouts_and_error_codes_keep_the_last_verdict() {
    let list = Blocklist::start().await;
    let name = "7.100.51.198.bl.test.";
    list.set(name, "127.0.0.2", Some("spam trap hits"));
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(&sites, "", reputation(list.addr, "bl.test", "demote", "0s"));
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
        // Two more rounds of this answer, so that it has surely been seen.
        eventually(format!("{result} counted"), || async {
            count(result) >= before + 8.0
        })
        .await;
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
    let sites = Relays::sites(1, 1, 1).await;
    let setup = checked(
        &sites,
        "",
        reputation(silent.local_addr().unwrap(), "bl.test", "demote", "1h"),
    );
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
