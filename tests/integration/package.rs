//! The Debian package's own files (`deploy/debian/`, `[package.metadata.deb]` in Cargo.toml):
//! its unit, made from the hand-installed one, keeps every setting of it, its default config
//! stays on this machine, and every file it lists exists. `tests/package/install-test.sh` installs the real
//! package; these checks run everywhere, without root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What `program script` prints, which must succeed: how build-deb.sh makes a shipped file.
fn made_by(program: &str, script: &str) -> String {
    let out = std::process::Command::new(program)
        .arg(repo().join(script))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The package's unit as deploy/debian/unit.sh makes it from deploy/smarthostd.service.
fn package_unit() -> String {
    made_by("bash", "deploy/debian/unit.sh")
}

/// A unit's sections and directives in order, without comments and blank lines.
fn directives(path: &Path) -> Vec<String> {
    unit_directives(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

fn unit_directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(String::from)
        .collect()
}

#[test]
fn the_package_unit_is_the_hand_installed_one_with_package_paths_and_user() {
    let manual = directives(&repo().join("deploy/smarthostd.service"));
    let text = package_unit();
    let packaged = unit_directives(&text);
    // The only differences allowed: the binary's path, and a static user (which the postinst
    // creates) for the dynamic one. Every sandboxing line must be the same.
    let expected: Vec<String> = manual
        .iter()
        .flat_map(|l| match l.as_str() {
            "DynamicUser=yes" => vec!["User=smarthostd".into(), "Group=smarthostd".into()],
            _ => vec![l.replace("/usr/local/bin/smarthostd", "/usr/bin/smarthostd")],
        })
        .collect();
    assert_eq!(packaged, expected);
    assert!(packaged.contains(
        &"ExecStart=/usr/bin/smarthostd serve --config /etc/smarthostd/smarthost.toml".to_string()
    ));
    assert!(packaged.contains(&"StateDirectory=smarthostd".to_string()));
    // Its comments say what it is where it is installed, and nothing of the dynamic user.
    assert!(text.starts_with("# /usr/lib/systemd/system/smarthostd.service"));
    assert!(!text.contains("dynamic user") && !text.contains("/usr/local/bin"));
    assert!(text.contains("# group smarthostd alone"), "{text}");
}

#[test]
fn the_package_changelog_is_of_this_version() {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let version = manifest["package"]["version"].as_str().unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let changelog =
        std::fs::read_to_string(repo().join(deb["changelog"].as_str().unwrap())).unwrap();
    let first = changelog.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("smarthostd ({version}-1) ")),
        "the changelog's latest entry is not {version}-1: {first}"
    );
    // lintian's copyright-without-copyright-notice wants a year beside the holder.
    let copyright = deb["copyright"].as_str().unwrap();
    assert!(
        copyright
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u16>()
            .is_ok(),
        "{copyright}"
    );
}

#[test]
fn the_package_config_touches_nothing_beyond_loopback() {
    // As build-deb.sh makes it, with the zone file the package installs beside it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smarthost.toml");
    std::fs::write(&path, made_by("python3", "deploy/debian/config.py")).unwrap();
    std::fs::copy(
        repo().join("deploy/smarthost.internal.zone"),
        dir.path().join("smarthost.internal.zone"),
    )
    .unwrap();
    let loaded = crate::support::load_shipped(&path);
    let server = &loaded.config.server;
    assert_eq!(
        server.listen,
        ["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(server.admin, Some("127.0.0.1:8053".parse().unwrap()));
    assert_eq!(
        server.state_dir.as_deref(),
        Some(Path::new("/var/lib/smarthostd"))
    );
    // Who may act: root and the group smarthostd, through the socket in the unit's
    // RuntimeDirectory= and the token the postinst makes.
    assert_eq!(
        server.control_socket.as_deref(),
        Some(Path::new("/run/smarthostd/control.sock"))
    );
    assert!(loaded.admin_token.is_some());
    let postinst = std::fs::read_to_string(repo().join("deploy/debian/postinst")).unwrap();
    assert!(postinst.contains("TOKEN=/etc/smarthostd/admin-token"));
    let unit = unit_directives(&package_unit());
    assert!(unit.contains(&"RuntimeDirectory=smarthostd".to_string()));
    let hosts = &loaded.topology.hosts;
    assert!(hosts.len() >= 3, "an example worth the name");
    for host in hosts {
        assert!(
            host.target.is_none() && host.addresses.iter().all(|a| a.is_loopback()),
            "{}: {:?} would be probed off this machine",
            host.name,
            host.addresses
        );
    }
}

#[test]
fn every_file_the_package_lists_exists_or_is_built() {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets");
    let mut destinations = Vec::new();
    for asset in assets {
        let source = asset[0].as_str().unwrap();
        let dest = asset[1].as_str().unwrap();
        // target/ holds what deploy/debian/build-deb.sh builds and generates.
        if !source.starts_with("target/") {
            assert!(repo().join(source).is_file(), "{source} is missing");
        }
        let name = Path::new(source).file_name().unwrap().to_str().unwrap();
        destinations.push(if dest.ends_with('/') {
            format!("/{dest}{name}")
        } else {
            format!("/{dest}")
        });
    }
    for conf in deb["conf-files"].as_array().expect("conf-files") {
        let conf = conf.as_str().unwrap();
        assert!(
            destinations.iter().any(|d| d == conf),
            "{conf} is a conffile but no asset installs it: {destinations:?}"
        );
    }
    let scripts = repo().join(deb["maintainer-scripts"].as_str().unwrap());
    for script in ["postinst", "postrm", "changelog", "unit.sh", "config.py"] {
        assert!(scripts.join(script).is_file(), "{script} missing");
    }
    // The unit is made at build time (deploy/debian/unit.sh), where cargo-deb looks for it.
    let units = deb["systemd-units"]["unit-scripts"].as_str().unwrap();
    assert!(units.starts_with("target/debian-assets/"), "{units}");
    let build = std::fs::read_to_string(scripts.join("build-deb.sh")).unwrap();
    assert!(
        build.contains("deploy/debian/unit.sh > \"$assets/systemd/smarthostd.service\""),
        "build-deb.sh does not make the unit where {units} says"
    );
    for script in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(scripts.join(script)).unwrap();
        assert_eq!(
            text.matches("#DEBHELPER#").count(),
            1,
            "{script}: the unit's snippets go where #DEBHELPER# stands, once"
        );
    }
}
