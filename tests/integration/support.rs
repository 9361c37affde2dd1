//! The in-process server on port 0, and a DNS client built on hickory-proto.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use smarthostd::admin::Control;
use smarthostd::server::{self, Running};
use smarthostd::{dns, loaded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::fake_smtp::{Behavior, FakeSmtp};

/// How long a test waits for an answer or a state before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `probe` until it gives `Ok`, and returns that; fails after [`DEADLINE`], naming `what`
/// never came and what the last poll saw (the `Err` it gave).
pub(crate) async fn eventually<T, F, Fut>(what: impl std::fmt::Display, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(start.elapsed() < DEADLINE, "never {what}; last: {last}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How long a UDP client waits for one response.
const UDP_WAIT: Duration = Duration::from_secs(2);

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
        let sockets = dns::bind::bind(&loaded.config.server.listen, 2).unwrap();
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

/// `[sites.oxford]` and `[sites.cambridge]` with one relay, `mail1`, each.
pub(crate) fn two_sites(
    oxford: &crate::fake_smtp::FakeSmtp,
    cambridge: &crate::fake_smtp::FakeSmtp,
) -> String {
    format!(
        "[sites.oxford]\nhosts = [{}]\n[sites.cambridge]\nhosts = [{}]\n",
        oxford.host_entry("mail1"),
        cambridge.host_entry("mail1")
    )
}

/// A query message.
pub(crate) fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(fastrand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m
}

fn fastrand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(4242);
    ID.fetch_add(1, Ordering::Relaxed)
}

/// Sends raw bytes over UDP; `None` when no response comes.
pub(crate) async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_raw_from(&socket, server, bytes).await
}

/// Sends raw bytes over UDP from `socket`.
pub(crate) async fn udp_raw_from(
    socket: &UdpSocket,
    server: SocketAddr,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(UDP_WAIT, socket.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// A UDP query with EDNS (payload 1232), parsed.
pub(crate) async fn udp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    udp_message(server, &query(name, rtype, Some(1232))).await
}

/// Sends `message` over UDP and parses the response.
pub(crate) async fn udp_message(server: SocketAddr, message: &Message) -> Message {
    let bytes = udp_raw(server, &message.to_vec().unwrap())
        .await
        .expect("a UDP response");
    let response = Message::from_vec(&bytes).expect("a parseable response");
    assert_eq!(response.metadata.id, message.metadata.id);
    response
}

/// Sends raw bytes as one TCP message and returns the raw response.
pub(crate) async fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    read_framed(&mut stream).await.expect("a TCP response")
}

/// Reads one length-prefixed message.
pub(crate) async fn read_framed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(UDP_WAIT, stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(UDP_WAIT, stream.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf)
}

/// A TCP query, parsed.
pub(crate) async fn tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = query(name, rtype, None);
    Message::from_vec(&tcp_raw(server, &q.to_vec().unwrap()).await).unwrap()
}

/// The (preference, exchange) pairs of an MX answer, exchange in lower case.
pub(crate) fn mx_set(m: &Message) -> Vec<(u16, String)> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii().to_ascii_lowercase())),
            _ => None,
        })
        .collect()
}

/// (owner, address) of each A/AAAA record in the additional section.
pub(crate) fn additional_addresses(m: &Message) -> Vec<(String, String)> {
    m.additionals
        .iter()
        .filter_map(|r| {
            r.data
                .ip_addr()
                .map(|ip| (r.name.to_ascii().to_ascii_lowercase(), ip.to_string()))
        })
        .collect()
}

/// `(pref, "host.site.smarthost.internal.")`.
pub(crate) fn mx(pref: u16, host: &str) -> (u16, String) {
    (pref, format!("{host}.smarthost.internal."))
}

/// The server as its own process (its descriptors, signals and exit code its own), started
/// with JSON logs into a file; ports are bound by the child (port 0) and read from its log.
pub(crate) struct ServerProcess {
    pub child: std::process::Child,
    pub dns: SocketAddr,
    pub admin: SocketAddr,
    pub log: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `smarthostd serve` on `setup` in a fresh folder, with at most `fd_limit`
    /// descriptors when given, and waits for it to serve DNS.
    pub(crate) fn spawn(setup: &Setup, fd_limit: Option<u32>) -> Self {
        Self::spawn_in(setup, tempfile::tempdir().unwrap(), fd_limit, true)
    }

    /// As [`spawn`](Self::spawn) in `dir`; `wait` for DNS to be served, or only for the admin
    /// API (a server whose first probe round is still running).
    pub(crate) fn spawn_in(
        setup: &Setup,
        dir: tempfile::TempDir,
        fd_limit: Option<u32>,
        wait: bool,
    ) -> Self {
        Self::launch(setup, dir, fd_limit, wait, "json")
    }

    /// As [`spawn`](Self::spawn) in `dir`, logging text (`--log-format text`), as journald
    /// and a terminal see it.
    pub(crate) fn spawn_text_log(setup: &Setup, dir: tempfile::TempDir) -> Self {
        Self::launch(setup, dir, None, true, "text")
    }

    fn launch(
        setup: &Setup,
        dir: tempfile::TempDir,
        fd_limit: Option<u32>,
        wait: bool,
        format: &str,
    ) -> Self {
        let config = dir.path().join("smarthost.toml");
        std::fs::write(&config, setup.render()).unwrap();
        std::fs::write(dir.path().join("smarthost.internal.zone"), &setup.zone_file).unwrap();
        let log = dir.path().join("smarthostd.log");
        let limit = fd_limit.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{limit}exec \"$0\" serve --log-format {format} --config \"$1\" 2>\"$2\""
            ))
            .arg(env!("CARGO_BIN_EXE_smarthostd"))
            .arg(&config)
            .arg(&log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut process = Self {
            child,
            dns: "0.0.0.0:0".parse().unwrap(),
            admin: "0.0.0.0:0".parse().unwrap(),
            log,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            let text = process.log_text();
            if let Some(admin) =
                field(&text, "\"admin\":\"", '"').or_else(|| field(&text, " admin=", ' '))
            {
                process.admin = admin.trim().parse().unwrap();
            }
            if let Some(dns) =
                field(&text, "\"dns\":\"[", '"').or_else(|| field(&text, " dns=[", ']'))
            {
                process.dns = dns
                    .trim_end_matches(']')
                    .split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
            }
            if process.admin.port() != 0 && (!wait || process.dns.port() != 0) {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the server exited ({status}):\n{text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the server did not come up:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server has logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Descriptors the server has open.
    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// CPU time (user and system) the server has used.
    pub(crate) fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name: utime and stime are the 12th and 13th.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Sends `signal` to the server.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits up to `limit` for the server to exit; its exit status.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after the first `prefix` in `text`, up to the next `end` (or line end).
fn field<'a>(text: &'a str, prefix: &str, end: char) -> Option<&'a str> {
    let at = text.find(prefix)? + prefix.len();
    let rest = &text[at..];
    Some(&rest[..rest.find([end, '\n'])?])
}

/// Raises this process's descriptor limit to its hard limit (tests that open many sockets).
pub(crate) fn raise_fd_limit(at_least: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(
        hard >= at_least,
        "this test needs {at_least} descriptors; the hard limit is {hard}"
    );
}

/// One HTTP/1.0 request to the admin API; `None` when it fails or takes over `limit`.
pub(crate) async fn http_get(admin: SocketAddr, path: &str, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let attempt = async {
        let mut s = TcpStream::connect(admin).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    tokio::time::timeout(limit, attempt).await.ok().flatten()
}

/// A GET over HTTP/1.0: status and body.
pub(crate) async fn http_status_and_body(admin: SocketAddr, path: &str) -> (u16, String) {
    http_raw(
        admin,
        &format!("GET {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n"),
    )
    .await
}

/// Sends `request` as written (it should ask the server to close the connection) and returns
/// the response's status and body.
pub(crate) async fn http_raw(admin: SocketAddr, request: &str) -> (u16, String) {
    let stream = TcpStream::connect(admin).await.unwrap();
    exchange(stream, request).await
}

/// As [`http_raw`], over a UNIX socket (the control socket).
pub(crate) async fn http_raw_unix(socket: &std::path::Path, request: &str) -> (u16, String) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    exchange(stream, request).await
}

async fn exchange<S>(mut stream: S, request: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let exchange = async {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("an HTTP response in time");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// Runs the `smarthostd` binary with `args`, without the token from the environment and from a
/// folder with no config of its own.
pub(crate) fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smarthostd"))
        .args(args)
        .env_remove(smarthostd::admin::TOKEN_ENV)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

/// [`cli`] off the test's runtime, so that the server under test answers meanwhile.
pub(crate) async fn cli_off_runtime(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args)
    })
    .await
    .unwrap()
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

/// The relays most tests need: Oxford with `mail1` and `mail2`, Cambridge with `mail1`, each a
/// healthy fake relay on loopback.
pub(crate) struct Relays {
    pub(crate) oxford: Vec<FakeSmtp>,
    pub(crate) cambridge: FakeSmtp,
}

impl Relays {
    pub(crate) async fn start() -> Self {
        Self {
            oxford: vec![
                FakeSmtp::start(Behavior::Healthy).await,
                FakeSmtp::start(Behavior::Healthy).await,
            ],
            cambridge: FakeSmtp::start(Behavior::Healthy).await,
        }
    }

    pub(crate) fn toml(&self) -> String {
        format!(
            "[sites.oxford]\nhosts = [{}, {}]\n[sites.cambridge]\nhosts = [{}]\n",
            self.oxford[0].host_entry("mail1"),
            self.oxford[1].host_entry("mail2"),
            self.cambridge.host_entry("mail1")
        )
    }
}
