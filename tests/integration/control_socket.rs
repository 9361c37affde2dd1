//! Who may act: the control socket (file permissions decide, no token) and the admin token
//! file (read at start and on reload, refused when every user may read it, never shown).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use smarthostd::admin::ControlSocket;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::support::*;

const DRAIN: &str = "POST /hosts/oxford/mail1/drain HTTP/1.1\r\nHost: localhost\r\n\
                     X-Smarthostd-Request: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

async fn sites() -> (String, FakeSmtp, FakeSmtp) {
    let oxford = FakeSmtp::start(Behavior::Healthy).await;
    let cambridge = FakeSmtp::start(Behavior::Healthy).await;
    (two_sites(&oxford, &cambridge), oxford, cambridge)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

async fn run_cli(args: Vec<String>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli_off_runtime(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_takes_state_changes_without_the_token() {
    let (sites, _oxford, _cambridge) = sites().await;
    let mut setup = Setup::new(sites);
    setup.server = "admin_token = \"s3cret\"\ncontrol_socket = \"control.sock\"".into();
    let server = TestServer::start(&setup).await;
    let socket = server.dir.path().join("control.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(mode(&socket), 0o660);

    // Over TCP the same request needs the token; on the socket it does not.
    assert_eq!(http_raw(server.admin, DRAIN).await.0, 401);
    let (code, body) = http_raw_unix(&socket, DRAIN).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        server.mx("oxford.smarthost.internal").await,
        vec![mx(20, "mail1.cambridge")]
    );
    // The socket still refuses what a web page (through a proxy) could send.
    let form = "POST /hosts/oxford/mail1/undrain HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\
                Connection: close\r\n\r\n";
    assert_eq!(http_raw_unix(&socket, form).await.0, 403);
    let rebound = "GET /status HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(http_raw_unix(&socket, rebound).await.0, 421);

    // The CLI takes the socket when the config names one: a wrong token does not matter there,
    // and matters over TCP (--admin).
    let config = server.dir.path().join("smarthost.toml");
    let config = config.to_str().unwrap().to_string();
    let out = run_cli(vec![
        "undrain".into(),
        "oxford/mail1".into(),
        "--config".into(),
        config.clone(),
        "--token".into(),
        "wrong".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 2);
    let out = run_cli(vec![
        "drain".into(),
        "oxford/mail1".into(),
        "--admin".into(),
        server.admin.to_string(),
        "--token".into(),
        "wrong".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("bearer token"),
        "{stderr}"
    );
    assert_eq!(server.mx("oxford.smarthost.internal").await.len(), 2);

    // A clean stop takes the socket away.
    let dir = server.stop().await;
    assert!(!dir.path().join("control.sock").exists());
}

#[test]
fn what_stands_at_the_socket_path_is_never_replaced_or_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let path = dir.path().join("control.sock");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "keep me").unwrap();

    std::fs::write(&path, "a file").unwrap();
    let e = ControlSocket::bind(&path).unwrap_err().to_string();
    assert!(e.contains("a file is in its place"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a file");
    std::fs::remove_file(&path).unwrap();

    std::os::unix::fs::symlink(&secret, &path).unwrap();
    let e = ControlSocket::bind(&path).unwrap_err().to_string();
    assert!(e.contains("a symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "keep me");
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(&path).unwrap();

    std::fs::create_dir(&path).unwrap();
    let e = ControlSocket::bind(&path).unwrap_err().to_string();
    assert!(e.contains("a folder"), "{e}");
    std::fs::remove_dir(&path).unwrap();

    // A socket someone listens on is theirs; a stale one (nobody listens) is replaced.
    let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = ControlSocket::bind(&path).unwrap_err().to_string();
    assert!(e.contains("another process is listening"), "{e}");
    drop(live);
    let bound = ControlSocket::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o660);
    std::os::unix::net::UnixStream::connect(&path).expect("the new socket takes connections");
    drop(bound);

    // The folder is left as it was, and nothing else was left in it.
    assert_eq!(mode(dir.path()), 0o750);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["control.sock", "secret"]);

    let missing = dir.path().join("run/control.sock");
    let e = ControlSocket::bind(&missing).unwrap_err().to_string();
    assert!(e.contains("RuntimeDirectory"), "{e}");
}

#[test]
fn the_server_does_not_start_over_a_file_at_the_socket_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup =
        Setup::new("[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.0.1\"] }]\n");
    setup.server = "control_socket = \"control.sock\"".into();
    std::fs::write(dir.path().join("smarthost.toml"), setup.render()).unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    std::fs::write(dir.path().join("control.sock"), "data").unwrap();
    let config = dir.path().join("smarthost.toml");
    let out = cli(&["serve", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("control.sock") && stderr.contains("not replaced"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("control.sock")).unwrap(),
        "data"
    );
}

fn write_token(path: &Path, token: &str, mode: u32) {
    std::fs::write(path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn drain_with(admin: std::net::SocketAddr, token: &str) -> String {
    format!(
        "POST /hosts/oxford/mail1/drain HTTP/1.1\r\nHost: {admin}\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_read_at_start_and_on_every_reload() {
    let (sites, _oxford, _cambridge) = sites().await;
    let mut setup = Setup::new(sites);
    setup.server = "admin_token_file = \"admin-token\"".into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    write_token(&file, "first-token", 0o640);
    let server = TestServer::start_in(&setup, dir).await;
    let admin = server.admin;
    assert_eq!(http_raw(admin, &drain_with(admin, "nope")).await.0, 401);
    assert_eq!(
        http_raw(admin, &drain_with(admin, "first-token")).await.0,
        200
    );

    write_token(&file, "second-token", 0o600);
    server.control.reload().await.unwrap();
    assert_eq!(
        http_raw(admin, &drain_with(admin, "first-token")).await.0,
        401
    );
    assert_eq!(
        http_raw(admin, &drain_with(admin, "second-token")).await.0,
        200
    );

    // A file every user may read is refused; the running token stays, and is never shown.
    write_token(&file, "third-token", 0o644);
    let e = server.control.reload().await.unwrap_err().to_string();
    assert!(
        e.contains("smarthost.toml:")
            && e.contains("server.admin_token_file")
            && e.contains("open to every user"),
        "{e}"
    );
    assert!(!e.contains("third-token"), "{e}");
    assert_eq!(
        http_raw(admin, &drain_with(admin, "second-token")).await.0,
        200
    );
    assert_eq!(
        http_raw(admin, &drain_with(admin, "third-token")).await.0,
        401
    );
}

#[test]
fn check_config_names_bad_token_files_and_admin_hosts_by_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smarthost.internal.zone"), ZONE).unwrap();
    let token = dir.path().join("admin-token");
    let sites = "[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.0.1\"] }]\n";
    let check = |server: &str| {
        let mut setup = Setup::new(sites);
        setup.server = server.into();
        let config = dir.path().join("smarthost.toml");
        std::fs::write(&config, setup.render()).unwrap();
        let out = cli(&["check-config", config.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    write_token(&token, "s3cret-in-file", 0o640);
    let (ok, text) = check("admin_token_file = \"admin-token\"");
    assert!(ok, "{text}");
    for (mode, content, want) in [
        (0o644, "s3cret-in-file", "open to every user (mode 0644)"),
        (0o600, "", "must hold the token alone on one line"),
    ] {
        write_token(&token, content, mode);
        let (ok, text) = check("admin_token_file = \"admin-token\"");
        assert!(!ok, "{text}");
        // The line of the key: [server] is line 1, listen 2, admin 3, the key 4.
        assert!(
            text.contains("smarthost.toml:4:")
                && text.contains("server.admin_token_file")
                && text.contains(want),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
    let (ok, text) = check("admin_token_file = \"missing-token\"");
    assert!(
        !ok && text.contains("cannot read") && text.contains("missing-token"),
        "{text}"
    );
    let (ok, text) = check("admin_token = \"x\"\nadmin_token_file = \"admin-token\"");
    assert!(!ok && text.contains("not both"), "{text}");
    let (ok, text) = check("admin_hosts = [\"smarthostd.example.org\", \"http://x.example:8053\"]");
    assert!(
        !ok && text.contains("smarthost.toml:4:") && text.contains("server.admin_hosts[1]"),
        "{text}"
    );
}

#[test]
fn the_token_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    write_token(&file, "log-canary-7f3a", 0o600);
    let mut setup =
        Setup::new("[sites.oxford]\nhosts = [{ name = \"mail1\", addresses = [\"127.0.0.1\"] }]\n");
    setup.server = "admin_token_file = \"admin-token\"".into();
    let mut server = ServerProcess::spawn_in(&setup, dir, None, false);
    let admin = server.admin;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(
            http_raw(admin, &drain_with(admin, "log-canary-wrong"))
                .await
                .0,
            401
        );
        let reload = |token: &str| {
            format!(
                "POST /reload HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        };
        assert_eq!(http_raw(admin, &reload("log-canary-7f3a")).await.0, 200);
    });
    // A reload that fails on the token file is logged at ERROR, without the token.
    write_token(
        &server._dir.path().join("admin-token"),
        "log-canary-7f3a",
        0o604,
    );
    server.signal(nix::sys::signal::Signal::SIGHUP);
    server.log_with_blocking(&["open to every user"]);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(DEADLINE).is_some());
    let log = server.log_text();
    assert!(!log.contains("log-canary"), "{log}");
}
