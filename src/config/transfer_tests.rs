use super::*;

const BASE: &str = "[zone]\norigin = \"smarthost.internal\"\nfile = \"z.zone\"\n\
    [sites.a]\nhosts = [ { name = \"m\", addresses = [\"192.0.2.1\"] } ]\n";
/// 32 bytes, as `tsig-keygen` makes for hmac-sha256.
const SECRET: &str = "K2tf3TRjvQkVCmJF3/Z9vA4Ozw5wB+sgBm7CzdyM8Ms=";

fn parse(transfer: &str) -> Result<Config, ConfigError> {
    crate::config::parse(
        std::path::Path::new("/etc/smarthostd/test.toml"),
        &format!("{BASE}[transfer]\n{transfer}\n"),
    )
}

#[test]
fn a_full_table_is_read_with_its_defaults() {
    let c = parse(&format!(
        "allow = [\"192.0.2.0/24\", \"::1/128\"]\nnotify = [\"192.0.2.53\", \"192.0.2.54:5300\", \"[2001:db8::53]:53\"]\n\
         [[transfer.tsig]]\nname = \"xfr-key\"\nsecret = \"{SECRET}\"\n\
         [[transfer.tsig]]\nname = \"Other.Key.\"\nalgorithm = \"hmac-sha512\"\nsecret = \"{SECRET}\"\n"
    ))
    .unwrap();
    let t = c.transfer.unwrap();
    assert!(t.require_tsig, "TSIG is required unless said otherwise");
    assert_eq!(t.allow.len(), 2);
    assert_eq!(t.notify[0].0, "192.0.2.53:53".parse().unwrap());
    assert_eq!(t.notify[1].0, "192.0.2.54:5300".parse().unwrap());
    assert_eq!(t.notify[2].0, "[2001:db8::53]:53".parse().unwrap());
    assert_eq!(t.tsig[0].algorithm, TsigAlgorithm::HmacSha256);
    assert_eq!(t.tsig[0].secret.bytes().len(), 32);
    assert_eq!(t.tsig[1].algorithm, TsigAlgorithm::HmacSha512);
    assert_eq!(t.tsig[1].key_name().to_string(), "other.key.");
    let none = crate::config::parse(std::path::Path::new("t.toml"), BASE).unwrap();
    assert!(none.transfer.is_none(), "no table: no transfers");
}

#[test]
fn secrets_are_never_shown() {
    let c = parse(&format!(
        "allow = [\"127.0.0.1/32\"]\n[[transfer.tsig]]\nname = \"k\"\nsecret = \"{SECRET}\""
    ))
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("K2tf3T"), "{shown}");
    assert!(shown.contains("TsigSecret(..)"), "{shown}");
}

#[test]
fn bad_values_are_named_by_file_line_and_key_without_the_secret() {
    let key = |secret: &str, extra: &str| {
        format!(
            "allow = [\"127.0.0.1/32\"]\n[[transfer.tsig]]\nname = \"k\"\n{extra}secret = {secret}\n"
        )
    };
    for (text, at, problem) in [
        (
            key("\"K2tf3TRjvQkV!!mJF3/Z9\"", ""),
            "transfer.tsig[0].secret",
            "base64",
        ),
        (
            key("\"c2hvcnQ=\"", ""),
            "transfer.tsig[0].secret",
            "at least 16 bytes",
        ),
        (key("1234567890", ""), "transfer.tsig[0].secret", "base64"),
        (
            key(&format!("\"{SECRET}\""), "algorithm = \"hmac-md5\"\n"),
            "transfer.tsig[0].algorithm",
            "hmac-sha512",
        ),
        (
            format!(
                "notify = [\"192.0.2.53\", \"secondary.example\"]\n{}",
                key(&format!("\"{SECRET}\""), "")
            ),
            "transfer.notify[1]",
            "not an address",
        ),
        (
            format!(
                "notify = [\"0.0.0.0\"]\n{}",
                key(&format!("\"{SECRET}\""), "")
            ),
            "transfer.notify[0]",
            "cannot be sent NOTIFY",
        ),
        (
            "allow = [\"127.0.0.1/32\"]\n".to_string(),
            "transfer.require_tsig",
            "at least one",
        ),
        (
            format!(
                "{}[[transfer.tsig]]\nname = \"K\"\nsecret = \"{SECRET}\"\n",
                key(&format!("\"{SECRET}\""), "")
            ),
            "transfer.tsig[1].name",
            "listed twice",
        ),
        (
            format!("{}tls = true\n", key(&format!("\"{SECRET}\""), "")),
            "transfer.tsig[0]",
            "unknown field",
        ),
    ] {
        let e = parse(&text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("/etc/smarthostd/test.toml:"), "{shown}");
        assert!(
            e.position.is_some_and(|p| p.0 > 5),
            "a line in [transfer]: {shown}"
        );
        assert!(e.key.starts_with(at), "{at}: {shown}");
        assert!(shown.contains(problem), "{problem}: {shown}");
        assert!(
            !shown.contains("K2tf3T") && !shown.contains("c2hvcnQ") && !shown.contains("12345"),
            "{shown}"
        );
    }
    let open = parse("allow = [\"127.0.0.1/32\"]\nrequire_tsig = false\n").unwrap();
    assert!(!open.transfer.unwrap().require_tsig);
}

#[test]
fn check_config_names_the_view_dependent_names_a_secondary_serves_alike() {
    let views = "[views]\nnames = [\"smtp\", \"relay\"]\ndefault = \"a\"\n";
    let text = format!("{BASE}{views}[transfer]\nallow = []\nrequire_tsig = false\n");
    let c = crate::config::parse(std::path::Path::new("t.toml"), &text).unwrap();
    let w = warnings(&c);
    assert!(
        w[0].contains("`smtp`, `relay`") && w[0].contains("default view"),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("every zone transfer is refused")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.contains("require_tsig = false")),
        "{w:?}"
    );
    let plain = parse(&format!(
        "allow = [\"127.0.0.1/32\"]\n[[transfer.tsig]]\nname = \"k\"\nsecret = \"{SECRET}\""
    ))
    .unwrap();
    assert!(warnings(&plain).is_empty());
}
