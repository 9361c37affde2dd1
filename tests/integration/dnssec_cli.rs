//! `smarthostd dnssec keygen`, `dnssec ds` and `check-config` on a signed config, from the
//! command line: the key files, the trust anchors printed, every key problem named with its file.

use std::os::unix::fs::PermissionsExt;

use crate::dnssec::signed;
use crate::support::*;

#[test]
fn keygen_ds_and_check_config_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let config = dir.path().join("smarthost.toml");
    let mut setup =
        signed("[sites.a]\nhosts = [ { name = \"m\", addresses = [\"127.0.0.9\"] } ]\n".into());
    setup.server = String::new();
    std::fs::write(&config, setup.render()).unwrap();
    let path = config.to_str().unwrap();
    let out = cli(&["check-config", path]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dnssec keygen"),
        "{out:?}"
    );
    let out = cli(&["dnssec", "keygen", "--config", path]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains(".private (mode 0600)"), "{said}");
    let out = cli(&["check-config", path]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("1 signing now"), "{said}");
    let out = cli(&["dnssec", "ds", "--config", path]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    for needed in [
        " IN DS ",
        " 13 2 ",
        "trust-anchor: \"",
        "static-ds",
        "trust_anchors.add('",
        "addTA('smarthost.internal'",
    ] {
        assert!(said.contains(needed), "{needed} missing:\n{said}");
    }
    // A key made readable by others: a warning with the fix; a damaged one: an error naming it.
    let keys = dir.path().join("keys");
    let private = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "private"))
        .unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&["check-config", path]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("warning:") && said.contains("chmod 600"),
        "{said}"
    );
    let text = std::fs::read_to_string(&private).unwrap();
    std::fs::write(&private, text.replace("PrivateKey: ", "PrivateKey: !")).unwrap();
    let out = cli(&["check-config", path]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        said.contains(private.to_str().unwrap()) && said.contains(":3:"),
        "{said}"
    );
}
