//! What the integration tests share: the in-process server on port 0 and its config, the fake
//! relays ([`relays`]), a DNS client ([`dns`]), HTTP to the admin API ([`http`]), the server
//! and the CLI as processes ([`process`]), and one way to wait ([`wait`]).

mod dns;
mod http;
mod process;
mod relays;
mod wait;

use std::net::SocketAddr;

use hickory_proto::rr::RecordType;
use smarthostd::admin::Control;
use smarthostd::server::{self, Running};
use smarthostd::{dns as server_dns, loaded};

pub(crate) use dns::*;
pub(crate) use http::*;
pub(crate) use process::*;
pub(crate) use relays::*;
pub(crate) use wait::*;

/// A zone file with what every test zone has: SOA, two name servers, a TXT record.
pub(crate) const ZONE: &str = "$ORIGIN smarthost.internal.\n$TTL 300\n\
@ IN SOA ns1.smarthost.internal. hostmaster.smarthost.internal. ( 7 3600 600 86400 60 )\n\
@ IN NS ns1.smarthost.internal.\n\
@ IN NS ns2.smarthost.internal.\n\
ns1 IN A 127.0.0.53\n\
ns2 IN AAAA ::1\n\
info IN TXT \"smart host zone\"\n";

/// Probe settings fast enough for tests, with flap protection kept.
pub(crate) const FAST_PROBES: &str =
    "[probe]\ninterval = \"200ms\"\ntimeout = \"1s\"\nrise = 2\nfall = 2\n";

/// A config file's parts; `render` fills in what tests do not care about.
pub(crate) struct Setup {
    /// `server.admin` as written (the test server listens where it is given a listener).
    pub admin: String,
    pub server: String,
    pub zone: String,
    pub probe: String,
    pub rest: String,
    pub zone_file: String,
}

impl Setup {
    /// `rest` holds the `[sites.*]` (and `[views]`) tables.
    pub(crate) fn new(rest: impl Into<String>) -> Self {
        Self {
            admin: "127.0.0.1:0".into(),
            server: String::new(),
            zone: String::new(),
            probe: FAST_PROBES.to_string(),
            rest: rest.into(),
            zone_file: ZONE.to_string(),
        }
    }

    pub(crate) fn render(&self) -> String {
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"{}\"\n{}\n\
             [zone]\norigin = \"smarthost.internal\"\nfile = \"smarthost.internal.zone\"\nttl = \"30s\"\n{}\n\
             {}\n{}\n",
            self.admin, self.server, self.zone, self.probe, self.rest
        )
    }
}

/// The server, running in this test's runtime.
pub(crate) struct TestServer {
    pub dns: SocketAddr,
    pub admin: SocketAddr,
    pub control: Control,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
}

impl TestServer {
    pub(crate) async fn start(setup: &Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(setup, dir).await
    }

    /// Starts with the config written into `dir` (a restart reuses the folder and its state).
    pub(crate) async fn start_in(setup: &Setup, dir: tempfile::TempDir) -> Self {
        let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_with(setup, dir, admin).await
    }

    /// As [`start_in`](Self::start_in), with the admin API on `admin`, already bound (so that
    /// other instances' configs can name it before this one starts).
    pub(crate) async fn start_with(
        setup: &Setup,
        dir: tempfile::TempDir,
        admin: std::net::TcpListener,
    ) -> Self {
        let path = dir.path().join("smarthost.toml");
        std::fs::write(&path, setup.render()).unwrap();
        std::fs::write(dir.path().join("smarthost.internal.zone"), &setup.zone_file).unwrap();
        let loaded = loaded::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let sockets = server_dns::bind::bind(&loaded.config.server.listen, 2).unwrap();
        admin.set_nonblocking(true).unwrap();
        let control = (loaded.config.server)
            .control_socket_path(&loaded.config.path)
            .map(|p| smarthostd::admin::ControlSocket::bind(&p).unwrap_or_else(|e| panic!("{e}")));
        let listeners = server::AdminListeners {
            tcp: Some(admin),
            control,
        };
        let running = server::start(loaded, sockets, listeners).await.unwrap();
        assert!(
            running.ready().await,
            "the server stopped before it was ready"
        );
        Self {
            dns: running.dns_addrs[0],
            admin: running.admin_addr.unwrap(),
            control: running.control.clone(),
            dir,
            running: Some(running),
        }
    }

    /// Rewrites the config file (for reload tests).
    pub(crate) fn rewrite(&self, setup: &Setup) {
        std::fs::write(self.dir.path().join("smarthost.toml"), setup.render()).unwrap();
        std::fs::write(
            self.dir.path().join("smarthost.internal.zone"),
            &setup.zone_file,
        )
        .unwrap();
    }

    /// Stops the server, keeping its folder.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().stop().await;
        self.dir
    }

    pub(crate) async fn mx(&self, name: &str) -> Vec<(u16, String)> {
        mx_set(&udp(self.dns, name, RecordType::MX).await)
    }

    /// Polls `name MX` until `want` holds, or fails after [`DEADLINE`].
    pub(crate) async fn wait_mx(
        &self,
        name: &str,
        want: impl Fn(&[(u16, String)]) -> bool,
    ) -> Vec<(u16, String)> {
        let want = &want;
        eventually(format!("{name} MX as wanted"), || async move {
            let mx = self.mx(name).await;
            if want(&mx) {
                Ok(mx)
            } else {
                Err(format!("{mx:?}"))
            }
        })
        .await
    }
}

/// Loads a config shipped in this tree as the server would on the machine it is meant for: a
/// token file it names at an absolute path (`/etc/smarthostd/admin-token`, which the package
/// makes at install) is given as a private file of this test, everything else as shipped.
pub(crate) fn load_shipped(path: &std::path::Path) -> smarthostd::loaded::Loaded {
    use std::os::unix::fs::PermissionsExt;
    let config = smarthostd::config::load(path).unwrap_or_else(|e| panic!("{e}"));
    let Some(token_file) = config.server.admin_token_file.filter(|f| f.is_absolute()) else {
        return smarthostd::loaded::load(path).unwrap_or_else(|e| panic!("{e}"));
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let quoted = format!("\"{}\"", token_file.display());
    assert_eq!(text.matches(&quoted).count(), 1, "{}", path.display());
    // With its zone file, under the name the config gives it.
    let copy = dir.path().join("smarthost.toml");
    std::fs::write(&copy, text.replace(&quoted, &format!("{token:?}"))).unwrap();
    if config.zone.file.is_relative() {
        let zone = dir.path().join(&config.zone.file);
        std::fs::create_dir_all(zone.parent().unwrap()).unwrap();
        std::fs::copy(config.zone.file_path(path), zone).unwrap();
    }
    let loaded = smarthostd::loaded::load(&copy);
    loaded.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
