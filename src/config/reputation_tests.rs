//! The blocklist keys' checks and warnings, each mistake named by file, line and key.

use super::*;
use crate::test_support::config_from;

const BASE: &str = r#"
    [zone]
    origin = "smarthost.internal"
    file = "z.zone"
    [sites.oxford]
    hosts = [ { name = "mail1", addresses = ["127.0.1.11"] } ]
    egress = ["198.51.100.7", "2001:db8::25"]
"#;

fn error(extra: &str) -> String {
    let text = format!("{BASE}{extra}");
    match crate::config::parse(std::path::Path::new("test.toml"), &text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_warn_every_15_minutes_held_an_hour() {
    let c = config_from(&format!(
        "{BASE}[reputation]\nlists = [{{ zone = \"zen.spamhaus.org\" }}]\n"
    ));
    let r = c.reputation.unwrap();
    assert_eq!(r.action, Action::Warn);
    assert_eq!(r.interval, Duration::from_secs(900));
    assert_eq!(r.hold, Duration::from_secs(3600));
    assert_eq!(r.timeout, Duration::from_secs(5));
    assert_eq!(r.lists[0].label(), "zen.spamhaus.org");
    assert_eq!(r.lists[0].listed, default_listed());
    assert_eq!(c.sites["oxford"].egress.len(), 2);
}

#[test]
fn every_mistake_names_its_line_and_key() {
    let cases = [
        (
            "[reputation]\nlists = [{ zone = \"\" }]\n",
            "reputation.lists[0].zone: must not be empty",
        ),
        (
            "[reputation]\nlists = [{ zone = \"org\" }]\n",
            "at least two labels",
        ),
        (
            "[reputation]\nlists = [{ zone = \"bl.example.org\", colour = 1 }]\n",
            "unknown field `colour`",
        ),
        ("[reputation]\nspeed = 1\n", "unknown field `speed`"),
        (
            "[reputation]\naction = \"demote\"\n",
            "reputation.action: \"demote\" needs at least one list",
        ),
        (
            "[reputation]\naction = \"block\"\n",
            "unknown variant `block`",
        ),
        (
            "[reputation]\ninterval = \"500ms\"\n",
            "reputation.interval: must be at least 1s",
        ),
        (
            "[reputation]\nresolver = [\"10.0.0.53\"]\n",
            "reputation.resolver",
        ),
        (
            "[reputation]\nlists = [{ zone = \"a.org\" }, { zone = \"A.org.\" }]\n",
            "reputation.lists[1].zone: a.org. is listed twice",
        ),
        (
            "[reputation]\nlists = [{ zone = \"a.org\", name = \"x\" }, { zone = \"b.org\", name = \"x\" }]\n",
            "reputation.lists[1].name",
        ),
        (
            "[reputation]\nlists = [{ zone = \"a.org\", listed = [\"::1/128\"] }]\n",
            "not an IPv4 network",
        ),
        (
            "[reputation]\nlists = [{ zone = \"a.org\", listed = [\"127.255.255.254\"] }]\n",
            "only error codes",
        ),
        (
            "[reputation]\nlists = [{ zone = \"a.org\", listed = [] }]\n",
            "reputation.lists[0].listed: needs at least one",
        ),
    ];
    for (extra, want) in cases {
        let e = error(extra);
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.starts_with("test.toml:"), "names the file and line: {e}");
        assert!(
            e.split(':')
                .nth(1)
                .is_some_and(|l| l.parse::<usize>().is_ok()),
            "{e}"
        );
    }
    let bad_egress = BASE.replace("\"2001:db8::25\"", "\"198.51.100.7\"");
    let e = crate::config::parse(std::path::Path::new("t.toml"), &bad_egress).unwrap_err();
    assert_eq!(e.key, "sites.oxford.egress[1]");
    assert_eq!(e.position.map(|p| p.0), Some(7));
    let e = crate::config::parse(
        std::path::Path::new("t.toml"),
        &BASE.replace("\"2001:db8::25\"", "\"mail.example.org\""),
    )
    .unwrap_err();
    assert_eq!(e.key, "sites.oxford.egress[1]", "{e}");
}

#[test]
fn a_bare_address_in_listed_is_its_slash_32() {
    let c = config_from(&format!(
        "{BASE}[reputation]\nlists = [{{ zone = \"a.org\", listed = [\"127.0.0.2\", \"127.0.0.4/30\"] }}]\n"
    ));
    let listed = &c.reputation.unwrap().lists[0].listed;
    assert_eq!(listed[0].to_string(), "127.0.0.2/32");
}

#[test]
fn warnings_say_what_is_not_checked() {
    let w = warnings(&config_from(BASE));
    assert!(w[0].contains("no [reputation] table"), "{w:?}");
    let w = warnings(&config_from(&format!(
        "{BASE}[reputation]\nlists = [{{ zone = \"a.org\" }}]\n"
    )));
    assert!(w[0].contains("reputation.resolver is not set"), "{w:?}");
    // Documentation addresses are no public address either.
    assert!(
        w.iter().any(|l| l.contains("198.51.100.7 is not a public")),
        "{w:?}"
    );
    let public = BASE.replace("[\"198.51.100.7\", \"2001:db8::25\"]", "[\"1.2.3.4\"]");
    let w = warnings(&config_from(&format!(
        "{public}[reputation]\nresolver = [\"10.0.0.53:53\"]\nlists = [{{ zone = \"a.org\" }}]\n"
    )));
    assert!(w.is_empty(), "{w:?}");
}
