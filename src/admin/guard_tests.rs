//! The gate's decisions, request by request, without sockets.

use super::*;

const LISTENER: &str = "127.0.0.1:8053";

fn tcp() -> Peer {
    Peer::Tcp(LISTENER.parse().unwrap())
}

fn policy(token: Option<&str>, names: &[&str]) -> AdminPolicy {
    AdminPolicy {
        token: token.map(AdminToken::new),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

/// A request: method, target, version, headers.
fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request_v(method, target, Version::HTTP_11, headers)
}

fn request_v(
    method: &str,
    target: &str,
    version: Version,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .version(version);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

#[test]
fn the_listeners_own_names_are_served_in_any_case_and_with_any_port() {
    let p = policy(None, &["smarthostd.example.org"]);
    for host in [
        "127.0.0.1:8053",
        "127.0.0.1",
        "localhost:9000",
        "LOCALHOST.",
        "localhost.:8053",
        "SmartHostd.Example.Org.:443",
    ] {
        let r = request("GET", "/status", &[("host", host)]);
        assert_eq!(check(&r, tcp(), &p), Ok(()), "{host}");
    }
}

#[test]
fn other_names_and_addresses_get_421() {
    let p = policy(None, &[]);
    for (host, want) in [
        ("evil.example:8053", Refusal::ForeignName),
        ("evil.example", Refusal::ForeignName),
        ("localhost.evil.example", Refusal::ForeignName),
        ("127.0.0.2:8053", Refusal::ForeignAddress),
        ("[::1]:8053", Refusal::ForeignAddress),
    ] {
        for method in ["GET", "POST"] {
            let r = request(method, "/status", &[("host", host), (REQUEST_HEADER, "1")]);
            assert_eq!(check(&r, tcp(), &p), Err(want.clone()), "{method} {host}");
        }
    }
}

#[test]
fn a_listener_on_every_address_takes_any_address_but_not_any_name() {
    let p = policy(None, &[]);
    for listener in ["0.0.0.0:8053", "[::]:8053"] {
        let peer = Peer::Tcp(listener.parse().unwrap());
        for host in ["10.0.0.53:8053", "[2001:db8::53]:8053", "127.0.0.1"] {
            let r = request("GET", "/metrics", &[("host", host)]);
            assert_eq!(check(&r, peer, &p), Ok(()), "{listener} {host}");
        }
        let r = request("GET", "/metrics", &[("host", "evil.example:8053")]);
        assert_eq!(check(&r, peer, &p), Err(Refusal::ForeignName));
    }
    let v6 = Peer::Tcp("[::1]:8053".parse().unwrap());
    let r = request("GET", "/", &[("host", "[::1]:8053")]);
    assert_eq!(check(&r, v6, &p), Ok(()));
}

#[test]
fn missing_repeated_and_malformed_hosts_get_400() {
    let p = policy(None, &[]);
    let r = request("GET", "/status", &[]);
    assert!(matches!(check(&r, tcp(), &p), Err(Refusal::BadHost(_))));
    // HTTP/1.0 has no Host header to require.
    let r = request_v("GET", "/healthz", Version::HTTP_10, &[]);
    assert_eq!(check(&r, tcp(), &p), Ok(()));
    let r = request(
        "GET",
        "/status",
        &[("host", "localhost"), ("host", "evil.example")],
    );
    assert!(matches!(check(&r, tcp(), &p), Err(Refusal::BadHost(_))));
    for host in [
        "evil.example@127.0.0.1",
        "127.0.0.1@evil.example",
        "",
        "::1",
        "localhost:",
        "localhost/x",
    ] {
        let r = request("GET", "/status", &[("host", host)]);
        assert!(
            matches!(check(&r, tcp(), &p), Err(Refusal::BadHost(_))),
            "{host:?}"
        );
    }
}

#[test]
fn an_absolute_form_target_is_the_host_and_must_agree_with_the_header() {
    let p = policy(None, &[]);
    let evil = request(
        "POST",
        "http://evil.example/reload",
        &[("host", "127.0.0.1:8053"), (REQUEST_HEADER, "1")],
    );
    assert!(check(&evil, tcp(), &p).is_err());
    let evil_both = request(
        "POST",
        "http://evil.example/reload",
        &[("host", "evil.example"), (REQUEST_HEADER, "1")],
    );
    assert_eq!(check(&evil_both, tcp(), &p), Err(Refusal::ForeignName));
    let own = request(
        "POST",
        "http://127.0.0.1:8053/reload",
        &[("host", "127.0.0.1:8053"), (REQUEST_HEADER, "1")],
    );
    assert_eq!(check(&own, tcp(), &p), Ok(()));
    let userinfo = request_v(
        "GET",
        "http://evil.example@127.0.0.1:8053/status",
        Version::HTTP_11,
        &[("host", "127.0.0.1:8053")],
    );
    assert!(check(&userinfo, tcp(), &p).is_err());
}

#[test]
fn the_issues_attack_and_a_plain_form_are_refused_with_what_was_wrong() {
    let p = policy(None, &[]);
    let attack = request(
        "POST",
        "/hosts/oxford/mail1/drain?for=2h",
        &[
            ("host", "127.0.0.1:8053"),
            ("content-type", "text/plain"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    );
    assert!(
        matches!(check(&attack, tcp(), &p), Err(Refusal::CrossSite(m)) if m.contains("Sec-Fetch-Site"))
    );
    // An older browser: Origin, no Fetch Metadata.
    let origin_only = request(
        "POST",
        "/reload",
        &[
            ("host", "127.0.0.1:8053"),
            ("origin", "http://evil.example"),
        ],
    );
    assert!(
        matches!(check(&origin_only, tcp(), &p), Err(Refusal::CrossSite(m)) if m.contains("Origin"))
    );
    // A form with neither (or a client that strips them): the custom header is missing.
    let form = request(
        "POST",
        "/hosts/oxford/mail1/drain",
        &[
            ("host", "127.0.0.1:8053"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    );
    assert!(
        matches!(check(&form, tcp(), &p), Err(Refusal::CrossSite(m)) if m.contains("X-Smarthostd-Request"))
    );
    // The custom header does not make a cross-site request acceptable.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1:8054"),
        ("origin", "http://localhost:8053"),
    ] {
        let r = request(
            "POST",
            "/reload",
            &[
                ("host", "127.0.0.1:8053"),
                (REQUEST_HEADER, "1"),
                (name, value),
            ],
        );
        assert!(
            matches!(check(&r, tcp(), &p), Err(Refusal::CrossSite(_))),
            "{name}: {value}"
        );
    }
}

#[test]
fn what_the_cli_and_a_same_origin_page_send_is_accepted() {
    let p = policy(None, &[]);
    let cli = request(
        "POST",
        "/reload",
        &[("host", "localhost:8053"), (REQUEST_HEADER, "1")],
    );
    assert_eq!(check(&cli, tcp(), &p), Ok(()));
    let same_origin = request(
        "POST",
        "/reload",
        &[
            ("host", "localhost:9000"),
            ("origin", "http://localhost:9000"),
            ("sec-fetch-site", "same-origin"),
            (REQUEST_HEADER, "1"),
        ],
    );
    assert_eq!(check(&same_origin, tcp(), &p), Ok(()));
    let typed = request(
        "POST",
        "/reload",
        &[
            ("host", "127.0.0.1:8053"),
            ("sec-fetch-site", "none"),
            (REQUEST_HEADER, "1"),
        ],
    );
    assert_eq!(check(&typed, tcp(), &p), Ok(()));
}

#[test]
fn with_a_token_tcp_needs_it_and_the_socket_does_not() {
    let p = policy(Some("s3cret"), &[]);
    let bare = request(
        "POST",
        "/reload",
        &[("host", "127.0.0.1:8053"), (REQUEST_HEADER, "1")],
    );
    assert_eq!(check(&bare, tcp(), &p), Err(Refusal::Token));
    assert_eq!(check(&bare, Peer::Socket, &p), Ok(()));
    let wrong = request(
        "POST",
        "/reload",
        &[
            ("host", "127.0.0.1:8053"),
            ("authorization", "Bearer s3cre"),
        ],
    );
    assert_eq!(check(&wrong, tcp(), &p), Err(Refusal::Token));
    let right = request(
        "POST",
        "/reload",
        &[
            ("host", "127.0.0.1:8053"),
            ("authorization", "bearer s3cret"),
        ],
    );
    assert_eq!(check(&right, tcp(), &p), Ok(()));
    // The socket still wants what a form cannot send, and still refuses cross-site requests.
    let form = request("POST", "/reload", &[("host", "localhost")]);
    assert!(matches!(
        check(&form, Peer::Socket, &p),
        Err(Refusal::CrossSite(_))
    ));
    let proxied = request(
        "POST",
        "/reload",
        &[
            ("host", "localhost"),
            ("origin", "http://evil.example"),
            (REQUEST_HEADER, "1"),
        ],
    );
    assert!(matches!(
        check(&proxied, Peer::Socket, &p),
        Err(Refusal::CrossSite(_))
    ));
    let rebound = request("GET", "/status", &[("host", "evil.example")]);
    assert_eq!(check(&rebound, Peer::Socket, &p), Err(Refusal::ForeignName));
}

#[test]
fn every_state_changing_method_is_checked_and_safe_ones_are_not() {
    let p = policy(None, &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "FOO"] {
        let r = request(method, "/anything", &[("host", "localhost")]);
        assert!(check(&r, tcp(), &p).is_err(), "{method}");
    }
    for method in ["GET", "HEAD", "OPTIONS"] {
        let r = request(method, "/anything", &[("host", "localhost")]);
        assert_eq!(check(&r, tcp(), &p), Ok(()), "{method}");
    }
}

#[test]
fn another_site_may_link_to_the_page_but_not_include_its_answers() {
    let p = policy(None, &[]);
    let link = request(
        "GET",
        "/",
        &[
            ("host", "127.0.0.1:8053"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ],
    );
    assert_eq!(check(&link, tcp(), &p), Ok(()));
    for (mode, dest) in [
        ("no-cors", "script"),
        ("cors", "empty"),
        ("navigate", "object"),
    ] {
        let r = request(
            "GET",
            "/status",
            &[
                ("host", "127.0.0.1:8053"),
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", mode),
                ("sec-fetch-dest", dest),
            ],
        );
        assert_eq!(
            check(&r, tcp(), &p),
            Err(Refusal::CrossSiteRead),
            "{mode} {dest}"
        );
    }
    let own = request(
        "GET",
        "/status",
        &[
            ("host", "127.0.0.1:8053"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "cors"),
        ],
    );
    assert_eq!(check(&own, tcp(), &p), Ok(()));
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer abc"), Some("abc"));
    assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearer"), None);
}
