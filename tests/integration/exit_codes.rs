//! The CLI's exit codes tell a script what went wrong: 2 bad usage or a config that does not
//! load (nothing sent), 3 the server unreachable, 4 the server heard the request and refused.

use crate::support::*;

#[test]
fn a_config_that_does_not_load_exits_2_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smarthost.toml");
    let text =
        Setup::new("[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.0.1\"] }]\n")
            .render()
            .replace("[probe]", "[probe]\nbogus = 1");
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let out = cli(&["status", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bogus") && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    // Bad usage exits the same way, before anything is sent.
    let out = cli(&["drain", "oxford", "--admin", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SITE/HOST"));
}

#[test]
fn a_server_that_cannot_be_reached_exits_3() {
    // A port that was just free on loopback: nothing listens there now.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = cli(&["status", "--admin", &closed.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot reach the admin API") && stderr.contains(&closed.to_string()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_exits_4() {
    let relays = Relays::start().await;
    let mut setup = Setup::new(relays.toml());
    setup.server = "admin_token = \"s3cret\"".into();
    let server = TestServer::start(&setup).await;
    let admin = server.admin.to_string();
    // A token the server does not take.
    let out = cli_off_runtime(&[
        "drain",
        "oxford/mail1",
        "--admin",
        &admin,
        "--token",
        "wrong",
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    // A host it does not know.
    let out = cli_off_runtime(&[
        "drain",
        "oxford/nosuch",
        "--admin",
        &admin,
        "--token",
        "s3cret",
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
    // Neither changed the answers; the right token does.
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 3);
    let out = cli_off_runtime(&[
        "drain",
        "oxford/mail1",
        "--admin",
        &admin,
        "--token",
        "s3cret",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 2);
}
