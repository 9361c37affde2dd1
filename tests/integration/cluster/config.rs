//! `[cluster]` in the config contract: what cannot work is refused with file, line and key;
//! what works but may surprise is a `check-config` warning.

use crate::config::{GOOD, ZONE, error, load};

fn with_cluster(server: &str, cluster: &str) -> String {
    GOOD.replace(
        "listen = [\"127.0.0.1:5353\"]",
        &format!("listen = [\"127.0.0.1:5353\"]\nadmin = \"10.0.0.53:8053\"\n{server}"),
    ) + cluster
}

const TOKEN: &str = "admin_token = \"shared\"\n";

#[test]
fn a_cluster_config_loads_and_every_mistake_is_named() {
    let good = with_cluster(
        TOKEN,
        "\n[cluster]\npeers = [\"10.0.0.53:8053\", \"10.0.1.53:8053\", \"[2001:db8::53]:8053\"]\n",
    );
    let (loaded, _dir) = load(&good, ZONE);
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    let cluster = loaded.config.cluster.unwrap();
    assert_eq!(cluster.peers.len(), 3);
    assert_eq!(
        cluster.unreachable_after,
        std::time::Duration::from_secs(60)
    );
    let cases = [
        (
            with_cluster("", "\n[cluster]\npeers = [\"10.0.1.53:8053\"]\n")
                .replace("10.0.0.53:8053\"\n", "127.0.0.1:8053\"\n"),
            "cluster",
            "admin token",
        ),
        (
            with_cluster(TOKEN, "\n[cluster]\npeers = []\n"),
            "cluster.peers",
            "list the admin listeners",
        ),
        (
            with_cluster(
                TOKEN,
                "\n[cluster]\npeers = [\"10.0.1.53:8053\", \"10.0.1.53:8053\"]\n",
            ),
            "cluster.peers[1]",
            "listed twice",
        ),
        (
            with_cluster(TOKEN, "\n[cluster]\npeers = [\"0.0.0.0:8053\"]\n"),
            "cluster.peers[0]",
            "not an address an instance can be reached at",
        ),
        (
            with_cluster(
                TOKEN,
                "\n[cluster]\npeers = [\"10.0.1.53:8053\"]\nunreachable_after = \"0s\"\n",
            ),
            "cluster.unreachable_after",
            "at least 1s",
        ),
        (
            with_cluster(
                TOKEN,
                "\n[cluster]\npeers = [\"10.0.1.53:8053\"]\nfriends = 1\n",
            ),
            "cluster",
            "friends",
        ),
        (
            with_cluster(TOKEN, "\n[cluster]\npeers = [\"10.0.1.53\"]\n"),
            "cluster.peers",
            "socket address",
        ),
    ];
    for (config, key, want) in cases {
        let e = error(&config, ZONE);
        let text = e.to_string();
        assert!(
            text.contains(key) && text.contains(want),
            "want {key} / {want:?} in: {text}"
        );
        assert!(e.position.is_some(), "a line for {text}");
        assert!(!text.contains("shared"), "the token in: {text}");
    }
}

#[test]
fn check_config_warns_of_a_loopback_admin_listener_and_of_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = GOOD.replace(
        "listen = [\"127.0.0.1:5353\"]",
        &format!("listen = [\"127.0.0.1:5353\"]\nadmin = \"127.0.0.1:8053\"\n{TOKEN}"),
    ) + "\n[cluster]\npeers = [\"127.0.0.1:8053\", \"10.0.1.53:8053\"]\n";
    std::fs::write(dir.path().join("smarthost.toml"), config).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let out = crate::support::cli(&[
        "check-config",
        dir.path().join("smarthost.toml").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("is on loopback: the instances at 10.0.1.53:8053 cannot reach"),
        "{stdout}"
    );
    assert!(stdout.contains("in the clear"), "{stdout}");
}
