//! The config contract: every shipped config loads; each kind of mistake gets a clear error
//! naming file, line and key.

use std::path::{Path, PathBuf};
use std::process::Command;

use smarthostd::config::ConfigError;
use smarthostd::loaded;

pub(crate) const GOOD: &str = r#"[server]
listen = ["127.0.0.1:5353"]

[zone]
origin = "smarthost.internal"
file = "smarthost.internal.zone"
ttl = "30s"

[probe]
interval = "2s"
timeout = "1s"

[sites.oxford]
hosts = [
  { name = "mail1", addresses = ["127.0.1.11"] },
  { name = "mail2", addresses = ["127.0.1.12", "2001:db8::12"], port = 25 },
]
fallback = ["cambridge"]

[sites.cambridge]
hosts = [ { name = "mail1", addresses = ["127.0.1.21"] } ]
"#;

pub(crate) const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 30\n\
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n@ IN NS ns1\nns1 IN A 127.0.0.1\n";

/// Writes `config` and `zone` to a fresh folder and loads them.
pub(crate) fn load(
    config: &str,
    zone: &str,
) -> (Result<loaded::Loaded, ConfigError>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smarthost.toml"), config).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), zone).unwrap();
    (loaded::load(&dir.path().join("smarthost.toml")), dir)
}

/// Loads a variant of GOOD and returns its error.
pub(crate) fn error(config: &str, zone: &str) -> ConfigError {
    let (result, _dir) = load(config, zone);
    match result {
        Ok(_) => panic!("this config must be rejected"),
        Err(e) => e,
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every smarthostd `*.toml` under `dir`, recursively, outside target/ (and the peer servers'
/// configurations of the benchmark).
fn shipped_configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir()
            && !name.starts_with('.')
            && name != "target"
            && name != "tests"
            && name != "fuzz"
            && !path.ends_with("bench/peers")
        {
            shipped_configs(&path, out);
        } else if name.ends_with(".toml") && name != "Cargo.toml" {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_loads() {
    let mut configs = Vec::new();
    shipped_configs(&repo(), &mut configs);
    assert!(
        configs.iter().any(|p| p.ends_with("zones/smarthost.toml")),
        "found {configs:?}"
    );
    for path in configs {
        crate::support::load_shipped(&path);
    }
}

#[test]
fn the_contract_example_loads() {
    let (result, _dir) = load(GOOD, ZONE);
    let loaded = result.unwrap();
    assert_eq!(loaded.topology.hosts.len(), 3);
    assert_eq!(loaded.topology.hosts[1].port, 25);
}

#[test]
fn a_stray_key_is_rejected_with_its_line() {
    let e = error(
        &GOOD.replace("ttl = \"30s\"", "ttl = \"30s\"\nttls = \"1s\""),
        ZONE,
    );
    assert!(e.message.contains("unknown field `ttls`"), "{e}");
    assert_eq!(e.key, "zone.ttls");
    assert_eq!(e.position.map(|p| p.0), Some(8), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:8:", e.file.display())),
        "{e}"
    );
}

#[test]
fn a_syntax_error_names_its_line() {
    let e = error(&GOOD.replace("interval = \"2s\"", "interval = \"2s"), ZONE);
    assert_eq!(e.position.map(|p| p.0), Some(10), "{e}");
}

#[test]
fn an_unknown_fallback_site_is_named() {
    let e = error(
        &GOOD.replace(
            "fallback = [\"cambridge\"]",
            "fallback = [\"cambridge\", \"londn\"]",
        ),
        ZONE,
    );
    assert_eq!(e.key, "sites.oxford.fallback[1]");
    assert!(e.message.contains("unknown site \"londn\""), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(18), "{e}");
}

#[test]
fn a_duplicate_host_is_named() {
    let e = error(&GOOD.replace("name = \"mail2\"", "name = \"MAIL1\""), ZONE);
    assert_eq!(e.key, "sites.oxford.hosts[1].name");
    assert!(e.message.contains("duplicate host"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(16), "{e}");
}

#[test]
fn a_bad_address_is_named() {
    let e = error(&GOOD.replace("127.0.1.21", "127.0.1.256"), ZONE);
    assert!(
        e.key.starts_with("sites.cambridge.hosts[0].addresses"),
        "{e}"
    );
    assert!(e.message.contains("not an IP address"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(21), "{e}");
}

#[test]
fn missing_soa_or_ns_and_another_origin_are_named() {
    let e = error(
        GOOD,
        &ZONE.replace("@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n", ""),
    );
    assert!(e.file.ends_with("smarthost.internal.zone"));
    assert!(e.message.contains("SOA"), "{e}");
    let e = error(GOOD, &ZONE.replace("@ IN NS ns1\n", ""));
    assert!(e.message.contains("NS"), "{e}");
    let e = error(
        GOOD,
        &ZONE.replace("$ORIGIN smarthost.internal.", "$ORIGIN example.com."),
    );
    assert!(e.message.contains("outside the zone"), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(1));
}

#[test]
fn a_static_record_at_a_synthesized_name_is_rejected() {
    let e = error(GOOD, &format!("{ZONE}oxford IN MX 10 elsewhere.example.\n"));
    assert!(e.message.contains("oxford.smarthost.internal."), "{e}");
    assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
    let e = error(GOOD, &format!("{ZONE}mail1.cambridge IN A 192.0.2.1\n"));
    assert!(e.message.contains("smart host"), "{e}");
}

#[test]
fn other_mistakes_are_explained() {
    let cases = [
        (
            GOOD.replace("fallback = [\"cambridge\"]", "fallback = [\"oxford\"]"),
            "own fallback",
        ),
        (
            GOOD.replace("ttl = \"30s\"", "ttl = \"30s\"\nlocal_preference = 20"),
            "greater than local_preference",
        ),
        (
            GOOD.replace("interval = \"2s\"", "interval = \"2 parsecs\""),
            "expected a duration",
        ),
        (
            GOOD.replace("rise = 2", "")
                .replace("timeout = \"1s\"", "timeout = \"1s\"\nrise = 0"),
            "at least 1",
        ),
        (
            GOOD.replace("name = \"mail2\"", "name = \"mail_2\""),
            "one DNS label",
        ),
        (
            GOOD.replace("addresses = [\"127.0.1.21\"]", "addresses = []"),
            "needs `addresses` or `fqdn`",
        ),
    ];
    for (config, want) in cases {
        let e = error(&config, ZONE);
        assert!(e.to_string().contains(want), "want {want:?} in: {e}");
    }
}

#[test]
fn check_config_exits_0_when_valid_and_1_with_the_error() {
    let bin = env!("CARGO_BIN_EXE_smarthostd");
    let out = Command::new(bin)
        .args(["check-config", "zones/smarthost.toml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        GOOD.replace("[probe]", "[probe]\nbogus = 1"),
    )
    .unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let out = Command::new(bin)
        .arg("check-config")
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:10:") && stderr.contains("probe") && stderr.contains("bogus"),
        "{stderr}"
    );
}

#[test]
fn values_that_cannot_work_are_refused_with_their_key() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            GOOD.replace("interval = \"2s\"", "interval = \"1ns\""),
            "probe.interval",
            "at least 100ms",
        ),
        (
            GOOD.replace("timeout = \"1s\"", "timeout = \"1ms\""),
            "probe.timeout",
            "10ms to 1m",
        ),
        (
            GOOD.replace("ttl = \"30s\"", "ttl = \"1ms\""),
            "zone.ttl",
            "at least 1s",
        ),
        (
            GOOD.replace("ttl = \"30s\"", "ttl = \"30s\"\ndegraded_ttl = \"500ms\""),
            "zone.degraded_ttl",
            "at least 1s",
        ),
        (
            format!("{GOOD}\n[views]\nnames = [\"oxford\"]\n"),
            "views.names[0]",
            "site oxford's own name",
        ),
        (
            format!("{GOOD}\n[views]\nnames = [\"mail1.cambridge.smarthost.internal.\"]\n"),
            "views.names[0]",
            "host cambridge/mail1's name",
        ),
        (
            GOOD.replace(
                "{ name = \"mail1\", addresses = [\"127.0.1.21\"] }",
                "{ name = \"mail1\", fqdn = \"192.0.2.7\" }",
            ),
            "sites.cambridge.hosts[0].fqdn",
            "is an IP address",
        ),
        (
            GOOD.replace(
                "listen = [\"127.0.0.1:5353\"]",
                "listen = [\"127.0.0.1:5353\"]\nadmin = \"0.0.0.0:8053\"",
            ),
            "server.admin",
            "not on loopback",
        ),
        (
            GOOD.replace("\"127.0.1.21\"", "\"fe80::25\""),
            "sites.cambridge.hosts[0].addresses[0]",
            "name its interface",
        ),
        (
            GOOD.replace("\"127.0.1.21\"", "\"fe80::25%no-such-if9\""),
            "sites.cambridge.hosts[0].addresses[0]",
            "no interface no-such-if9",
        ),
        (
            GOOD.replace("\"127.0.1.21\"", "\"2001:db8::25%lo\""),
            "sites.cambridge.hosts[0].addresses[0]",
            "only a link-local address",
        ),
        (
            GOOD.replace(
                "{ name = \"mail1\", addresses = [\"127.0.1.21\"] }",
                "{ name = \"mail1\", addresses = [\"127.0.1.21\"], tls_name = \"not a name\" }",
            ),
            "sites.cambridge.hosts[0].tls_name",
            "not a host name",
        ),
    ];
    for (config, key, want) in cases {
        let e = error(&config, ZONE);
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(want), "want {want:?} in: {e}");
        assert!(e.position.is_some(), "a line for {key}: {e}");
    }
}

#[test]
fn a_link_local_relay_with_its_interface_and_a_certificate_name_are_accepted() {
    let config = GOOD.replace(
        "{ name = \"mail1\", addresses = [\"127.0.1.21\"] }",
        "{ name = \"mail1\", addresses = [\"fe80::25%lo\"], starttls = true, tls_name = \"relay1.example.net\" }",
    );
    let (loaded, _dir) = load(&config, ZONE);
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    let host = &loaded.topology.hosts[2];
    assert_ne!(
        host.scope_id("fe80::25".parse().unwrap()),
        0,
        "lo has an index"
    );
    assert_eq!(
        host.tls_name().map(|n| n.to_str().into_owned()),
        Some("relay1.example.net".into())
    );
}

#[test]
fn aliases_in_the_zone_file_are_refused_with_their_line() {
    let e = error(GOOD, &format!("{ZONE}relay IN CNAME oxford\n"));
    assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
    assert!(
        e.message.contains("CNAME") && e.message.contains("not served"),
        "{e}"
    );
}

#[test]
fn the_all_view_is_not_built_when_the_default_view_is_a_site() {
    // 80 sites of 20 relays: each site's answer is small, but the "all" view would list all
    // 1,600 in one answer, which does not fit a DNS message. With a site as the default, no
    // client ever gets "all", so it is neither built nor checked.
    let mut sites = String::new();
    for s in 0..80 {
        let hosts: Vec<String> = (0..20)
            .map(|h| format!("{{ name = \"relay-{h:02}\", addresses = [\"10.{s}.{h}.1\"] }}"))
            .collect();
        sites.push_str(&format!(
            "[sites.site{s:02}]\nhosts = [{}]\nclients = [\"10.{s}.0.0/16\"]\nfallback = []\n",
            hosts.join(", ")
        ));
    }
    let big = format!(
        "[zone]\norigin = \"smarthost.internal\"\nfile = \"smarthost.internal.zone\"\n\
         [views]\ndefault = \"site00\"\n{sites}"
    );
    let (loaded, _dir) = load(&big, ZONE);
    if let Err(e) = loaded {
        panic!("{e}");
    }
    let all = big.replace("default = \"site00\"", "default = \"all\"");
    let e = error(&all, ZONE);
    assert!(e.message.contains("65,535"), "{e}");
}

#[test]
fn a_relative_state_dir_is_the_config_folders() {
    let config = GOOD.replace(
        "listen = [\"127.0.0.1:5353\"]",
        "listen = [\"127.0.0.1:5353\"]\nstate_dir = \"state\"",
    );
    let (loaded, dir) = load(&config, ZONE);
    let loaded = loaded.unwrap();
    assert_eq!(
        loaded.config.server.state_dir_path(&loaded.config.path),
        dir.path().join("state")
    );
}
