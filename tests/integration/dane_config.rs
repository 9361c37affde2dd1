//! `tlsa` and `tls_key` in the config, as `check-config` reports them: each bad record and key
//! file named with file, line and key; what cannot be published said as a warning.

use std::path::Path;

use crate::fake_tls::{MAIL1, Relay};
use crate::support::*;

const DIGEST: &str = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

/// Writes a config whose oxford/mail1 carries `pin`, and returns `check-config`'s exit status,
/// standard output and standard error.
fn check(dir: &Path, pin: &str) -> (bool, String, String) {
    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [\n  {{ name = \"mail1\", addresses = [\"127.0.1.11\"], {pin} }},\n]\n\
         [sites.cambridge]\nhosts = [{{ name = \"mail1\", addresses = [\"127.0.1.21\"] }}]\n"
    ));
    setup.server = String::new();
    let path = dir.join("smarthost.toml");
    std::fs::write(&path, setup.render()).unwrap();
    std::fs::write(dir.join("smarthost.internal.zone"), ZONE).unwrap();
    let out = cli(&["check-config", path.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of the host entry in [`check`]'s config.
fn host_line(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("smarthost.toml")).unwrap();
    text.lines()
        .position(|l| l.contains("name = \"mail1\", addresses = [\"127.0.1.11\"]"))
        .unwrap()
        + 1
}

#[test]
fn each_bad_record_is_refused_with_file_line_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!("tlsa = [\"3 1 1 {DIGEST}\", \"0 0 1 {DIGEST}\"]"),
            "tlsa[1]",
            "certificate usage 0 (PKIX-TA) is refused: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) records as unusable (RFC 7672 section 3.1.3)",
        ),
        (
            format!("tlsa = [\"1 1 1 {DIGEST}\"]"),
            "tlsa[0]",
            "certificate usage 1 (PKIX-EE) is refused",
        ),
        (
            format!("tlsa = [\"3 1 1 {}\"]", &DIGEST[..62]),
            "tlsa[0]",
            "a SHA-256 digest (matching type 1) is 32 bytes, 64 hex digits; this data is 31 bytes",
        ),
        (
            format!("tlsa = [\"3 1 2 {DIGEST}\"]"),
            "tlsa[0]",
            "a SHA-512 digest (matching type 2) is 64 bytes",
        ),
        (
            "tlsa = [\"3 1 1 zz\"]".to_string(),
            "tlsa[0]",
            "not hexadecimal",
        ),
        (
            "tlsa = [\"3 0 0 3082010a\"]".to_string(),
            "tlsa[0]",
            "the data is a whole certificate (DER), and this is not one",
        ),
        (
            "tlsa = [\"3 1\"]".to_string(),
            "tlsa[0]",
            "not a TLSA record: write it as \"3 1 1 <hex>\"",
        ),
    ];
    for (pin, key, message) in cases {
        let (ok, _, stderr) = check(dir.path(), &pin);
        assert!(!ok, "{pin}");
        let path = dir.path().join("smarthost.toml");
        let line = host_line(dir.path());
        assert!(
            stderr.contains(&format!("{}:{line}:", path.display()))
                && stderr.contains(&format!("sites.oxford.hosts[0].{key}"))
                && stderr.contains(message),
            "{pin}:\n{stderr}"
        );
    }
}

#[test]
fn a_key_file_that_is_missing_private_or_not_pem_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::self_signed(&[MAIL1]);
    let key_file = dir.path().join("mail1.pem");
    let line = |dir: &Path| host_line(dir);

    let (ok, _, stderr) = check(dir.path(), "tls_key = \"mail1.pem\"");
    assert!(!ok);
    assert!(
        stderr.contains(&format!(":{}:", line(dir.path())))
            && stderr.contains("sites.oxford.hosts[0].tls_key: cannot read")
            && stderr.contains(&key_file.display().to_string()),
        "{stderr}"
    );

    std::fs::write(
        &key_file,
        format!("{}{}", relay.pem(), relay.key.serialize_pem()),
    )
    .unwrap();
    let (ok, _, stderr) = check(dir.path(), "tls_key = \"mail1.pem\"");
    assert!(!ok);
    assert!(stderr.contains("mail1.pem holds a private key"), "{stderr}");
    assert!(
        !stderr.contains("PRIVATE KEY-----"),
        "never quoted: {stderr}"
    );

    std::fs::write(&key_file, "a certificate, honestly\n").unwrap();
    let (ok, _, stderr) = check(dir.path(), "tls_key = \"mail1.pem\"");
    assert!(!ok);
    assert!(
        stderr.contains("mail1.pem is not PEM (no BEGIN line)"),
        "{stderr}"
    );

    std::fs::write(&key_file, relay.pem()).unwrap();
    let (ok, stdout, stderr) = check(dir.path(), "tls_key = \"mail1.pem\"");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
}

#[test]
fn check_config_says_what_is_not_published_and_where_records_belong() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = check(
        dir.path(),
        &format!("tlsa = [\"3 1 1 {DIGEST}\"], starttls = false"),
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "warning: oxford/mail1 has TLSA records but answers are not signed (no [dnssec])"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: sites.oxford.hosts[0].starttls = false gives way to its TLSA records"
        ),
        "{stdout}"
    );
    // Cambridge, oxford's fallback, is not pinned: a bracketed sender of oxford's name could
    // be led to it.
    assert!(
        stdout.contains("warning: oxford.smarthost.internal. can lead an A-only sender (relayhost = [oxford.smarthost.internal]) to relays with TLSA records and to relays without (cambridge/mail1 has none)"),
        "{stdout}"
    );

    let mut setup = Setup::new(format!(
        "[sites.oxford]\nhosts = [{{ name = \"isp1\", fqdn = \"relay1.isp.test\", tlsa = [\"3 1 1 {DIGEST}\"] }}]\n"
    ));
    setup.server = String::new();
    let path = dir.path().join("fqdn.toml");
    std::fs::write(&path, setup.render()).unwrap();
    let out = cli(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("isp1 is named by fqdn relay1.isp.test, outside the zone: its TLSA records belong at _25._tcp.isp1.oxford.smarthost.internal.")
            && stdout.contains("looks them up at _25._tcp.relay1.isp.test., which only the zone of relay1.isp.test can publish"),
        "{stdout}"
    );
}
