//! One SMTP probe: connect, greeting, EHLO, optional STARTTLS, QUIT — as a polite client.
//!
//! Every step is bounded by the probe timeout; a failure is a reason a person understands,
//! never an error that escapes. The connection lives inside this one future, so a peer that
//! stalls costs nothing once the timeout fires.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::reply::{Reply, ReplyReader};

/// What a probe of one address needs.
#[derive(Clone)]
pub struct ProbeSettings {
    /// Bound on each step.
    pub timeout: Duration,
    /// The name announced in EHLO.
    pub ehlo: String,
    /// Present when the host must offer STARTTLS and complete a handshake.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name checked against the certificate, when verification is on.
    pub tls_name: Option<ServerName<'static>>,
    /// The address to connect from (`probe.source_address`), for relays of its family.
    pub source: Option<IpAddr>,
}

impl std::fmt::Debug for ProbeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSettings")
            .field("timeout", &self.timeout)
            .field("ehlo", &self.ehlo)
            .field("starttls", &self.tls.is_some())
            .finish()
    }
}

/// Settings are the same when a probe made with either would behave the same: a reload then
/// keeps the probe task. TLS settings are the same object when their inputs did not change.
impl PartialEq for ProbeSettings {
    fn eq(&self, other: &Self) -> bool {
        let same_tls = match (&self.tls, &other.tls) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_tls
            && self.timeout == other.timeout
            && self.ehlo == other.ehlo
            && self.tls_name == other.tls_name
            && self.source == other.source
    }
}

impl ProbeSettings {
    /// The longest one probe can take ([`step_bound`](Self::step_bound)).
    pub fn longest(&self) -> Duration {
        Self::step_bound(self.timeout, self.tls.is_some())
    }

    /// The longest a probe with step timeout `timeout` can take: every step's bound in turn —
    /// connect, greeting, EHLO (sent, answered), with STARTTLS the command (sent, answered)
    /// and the handshake, then QUIT (sent, answered). A start-up round that waits this long has
    /// every address's first verdict.
    pub fn step_bound(timeout: Duration, starttls: bool) -> Duration {
        let steps = if starttls { 9 } else { 6 };
        timeout * steps
    }
}

/// Probes `addr`; `Err` carries the reason it is not a working relay. Never takes longer than
/// [`ProbeSettings::longest`].
pub async fn probe(addr: SocketAddr, settings: &ProbeSettings) -> Result<(), String> {
    let longest = settings.longest();
    match timeout(longest, dialogue(addr, settings)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the SMTP dialogue took longer than {}",
            humantime::format_duration(longest)
        )),
    }
}

async fn dialogue(addr: SocketAddr, settings: &ProbeSettings) -> Result<(), String> {
    let t = settings.timeout;
    let secs = humantime::format_duration(t);
    let stream = match timeout(t, connect(addr, settings.source)).await {
        Err(_) => return Err(format!("no answer to TCP connect within {secs}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err("connection refused".into());
        }
        Ok(Err(e)) => return Err(format!("connect failed: {e}")),
        Ok(Ok(s)) => s,
    };
    let mut session = Session::new(stream, t);
    let greeting = session.reply("greeting").await?;
    if greeting.code != 220 {
        return Err(format!("greeting was \"{}\"", greeting.summary()));
    }
    let ehlo = session
        .command(&format!("EHLO {}", settings.ehlo), "EHLO")
        .await?;
    if ehlo.code != 250 {
        return Err(format!("EHLO answered \"{}\"", ehlo.summary()));
    }
    let Some(tls) = &settings.tls else {
        session.quit().await;
        return Ok(());
    };
    if !ehlo.has_extension("STARTTLS") {
        session.quit().await;
        return Err("STARTTLS is required but not offered".into());
    }
    let ready = session.command("STARTTLS", "STARTTLS").await?;
    if ready.code != 220 {
        return Err(format!("STARTTLS answered \"{}\"", ready.summary()));
    }
    let name = settings
        .tls_name
        .clone()
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
    let connector = TlsConnector::from(tls.clone());
    let stream = match timeout(t, connector.connect(name, session.stream)).await {
        Err(_) => return Err(format!("no TLS handshake within {secs}")),
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Ok(Ok(s)) => s,
    };
    let mut session = Session::new(stream, t);
    session.quit().await;
    Ok(())
}

/// Connects to `addr`, from `source` when it is of the same family.
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// A connection and its reply reader.
struct Session<S> {
    stream: S,
    reader: ReplyReader,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            reader: ReplyReader::default(),
            timeout,
        }
    }

    /// Reads one reply; `step` names what it answers, for the failure reason.
    async fn reply(&mut self, step: &str) -> Result<Reply, String> {
        let secs = humantime::format_duration(self.timeout);
        match timeout(self.timeout, self.read_reply()).await {
            Err(_) => Err(format!("no {step} reply within {secs}")),
            Ok(Err(e)) => Err(format!("{e} ({step})")),
            Ok(Ok(r)) => Ok(r),
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, String> {
        if let Some(r) = self.reader.feed(&[]) {
            return r.map_err(|e| e.to_string());
        }
        let mut buf = [0u8; 1024];
        loop {
            let n = match self.stream.read(&mut buf).await {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err("connection reset".into());
                }
                Err(e) => return Err(format!("read failed: {e}")),
            };
            if let Some(r) = self.reader.feed(&buf[..n]) {
                return r.map_err(|e| e.to_string());
            }
        }
    }

    /// Sends `line` and reads its reply.
    async fn command(&mut self, line: &str, step: &str) -> Result<Reply, String> {
        let secs = humantime::format_duration(self.timeout);
        // One write per command, so that it leaves as one segment. (No TCP_NODELAY: a client
        // that waits for each reply never has data in flight for Nagle to hold back.)
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match timeout(self.timeout, write).await {
            Err(_) => return Err(format!("could not send {step} within {secs}")),
            Ok(Err(e)) => return Err(format!("sending {step} failed: {e}")),
            Ok(Ok(())) => {}
        }
        self.reply(step).await
    }

    /// Says goodbye and waits for the reply; the verdict no longer depends on it. Dropping the
    /// session closes the connection.
    async fn quit(&mut self) {
        let _ = self.command("QUIT", "QUIT").await;
    }
}
