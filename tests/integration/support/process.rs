//! The server and the CLI as their own processes: their descriptors, signals, exit codes and
//! logs their own.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Setup, eventually, eventually_blocking, poll_blocking};

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
        // A first start compiles nothing, but may wait on a loaded machine: more than DEADLINE.
        let started = poll_blocking(Duration::from_secs(30), || {
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
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the server exited ({status}):\n{text}");
            }
            let up = process.admin.port() != 0 && (!wait || process.dns.port() != 0);
            if up { Ok(()) } else { Err(text) }
        });
        if let Err(text) = started {
            panic!("the server did not come up:\n{text}");
        }
        process
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

    /// Waits up to `limit` for the server to exit (with `Duration::ZERO`, looks once); its
    /// exit status.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        poll_blocking(limit, || self.child.try_wait().unwrap()).ok()
    }

    /// The server's log once it holds each of `wanted`; fails after [`DEADLINE`](super::DEADLINE) with the log.
    pub(crate) async fn log_with(&self, wanted: &[&str]) -> String {
        eventually(format!("{wanted:?} in the log"), || async {
            self.logged(wanted)
        })
        .await
    }

    /// As [`log_with`](Self::log_with), blocking the thread (for `#[test]` functions).
    pub(crate) fn log_with_blocking(&self, wanted: &[&str]) -> String {
        eventually_blocking(format!("{wanted:?} in the log"), || self.logged(wanted))
    }

    fn logged(&self, wanted: &[&str]) -> Result<String, String> {
        let log = self.log_text();
        if wanted.iter().all(|w| log.contains(w)) {
            Ok(log)
        } else {
            Err(log)
        }
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
