//! One SMTP probe: connect, greeting, EHLO (HELO when a relay does not know EHLO), optional
//! STARTTLS, QUIT — as a polite client, and a strict one: a relay that speaks before it is
//! asked fails (RFC 5321 section 4.2), whatever it says.
//!
//! Every step is bounded by the probe timeout; a failure is a reason a person understands,
//! never an error that escapes. The connection lives inside this one future, so a peer that
//! stalls costs nothing once the timeout fires.
//!
//! A pinned relay (one with TLSA records) is always probed with STARTTLS, and the chain it
//! presents is matched against its records as a DANE sender matches them; a relay that fails
//! that, or that offers no TLS, fails in a way a DANE sender would refuse it ([`DaneFailure`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use super::failure::{DaneFailure, Failed};
use super::session::Session;
use super::tls::is_key_not_held;
use crate::dane::{self, Tlsa};
use crate::network_text;

/// What a probe of one address needs.
#[derive(Clone)]
pub struct ProbeSettings {
    /// Bound on each step.
    pub timeout: Duration,
    /// The name announced in EHLO.
    pub ehlo: String,
    /// Present when the host must offer STARTTLS and complete a handshake.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name checked against the certificate, when verification is on, and sent as SNI.
    pub tls_name: Option<ServerName<'static>>,
    /// The address to connect from (`probe.source_address`), for relays of its family.
    pub source: Option<IpAddr>,
    /// The relay's TLSA records, when it is pinned (then `tls` is set too).
    pub tlsa: Option<Arc<Pinned>>,
}

/// What a pinned relay's chain is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// Its TLSA records.
    pub records: Vec<Tlsa>,
    /// The name a DANE-TA certificate must carry: the relay's MX exchange name (the TLSA base
    /// domain), without the trailing dot.
    pub name: String,
}

impl std::fmt::Debug for ProbeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSettings")
            .field("timeout", &self.timeout)
            .field("ehlo", &self.ehlo)
            .field("starttls", &self.tls.is_some())
            .field("source", &self.source)
            .field("tlsa", &self.tlsa.as_ref().map(|p| p.records.len()))
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
            && self.tlsa == other.tlsa
    }
}

impl ProbeSettings {
    /// The longest one probe can take ([`step_bound`](Self::step_bound)).
    pub fn longest(&self) -> Duration {
        Self::step_bound(self.timeout, self.tls.is_some())
    }

    /// The longest a probe with step timeout `timeout` can take: every step's bound in turn —
    /// connect, greeting, EHLO (sent, answered), then without STARTTLS perhaps HELO (sent,
    /// answered), with STARTTLS the command (sent, answered) and the handshake, then QUIT
    /// (sent, answered). A start-up round that waits this long has every address's first
    /// verdict.
    pub fn step_bound(timeout: Duration, starttls: bool) -> Duration {
        let steps = if starttls { 9 } else { 8 };
        timeout * steps
    }
}

/// A probe that passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passed {
    /// What an operator should know about how it passed: a relay that refused EHLO and
    /// accepted HELO.
    pub note: Option<String>,
}

/// EHLO replies that mean "I do not know EHLO" (RFC 5321 section 4.3.2: 502 "permitted only
/// with an old-style server that does not support EHLO"; 500 is RFC 821's reply to any verb
/// it does not recognize). Postfix and Exim then say HELO, and so does the probe. Other
/// refusals are about us, not the verb — 501 and 504 the argument, which HELO would repeat;
/// 550 a policy; 421 a closing service — and the relay is down.
const EHLO_UNKNOWN: [u16; 2] = [500, 502];

/// The longest TLS error text kept: it may quote the relay's certificate.
const TLS_ERROR_CHARS: usize = 200;

/// Probes `addr`; `Err` carries the reason it is not a working relay. Never takes longer than
/// [`ProbeSettings::longest`].
pub async fn probe(addr: SocketAddr, settings: &ProbeSettings) -> Result<Passed, Failed> {
    let longest = settings.longest();
    match timeout(longest, dialogue(addr, settings)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the SMTP dialogue took longer than {}",
            humantime::format_duration(longest)
        )
        .into()),
    }
}

/// How far a dialogue got: done without TLS, or a TLS session for the next step.
pub(super) enum Opened {
    /// No STARTTLS was asked for; the relay passed and was said goodbye to.
    Plain(Passed),
    /// The handshake is done (its signature checked).
    Tls(Box<Session<TlsStream<TcpStream>>>),
}

async fn dialogue(addr: SocketAddr, settings: &ProbeSettings) -> Result<Passed, Failed> {
    let mut session = match open(addr, settings).await? {
        Opened::Plain(passed) => return Ok(passed),
        Opened::Tls(session) => session,
    };
    if let Some(pinned) = &settings.tlsa {
        let chain = peer_chain(&session);
        if let Err(mismatch) =
            dane::authenticate(&pinned.records, &chain, &pinned.name, UnixTime::now())
        {
            let _ = session.quit().await;
            return Err(Failed::dane(mismatch.reason, DaneFailure::Mismatch));
        }
    }
    session.quit().await?;
    Ok(Passed::default())
}

/// The chain the relay presented, end entity first.
pub(super) fn peer_chain(session: &Session<TlsStream<TcpStream>>) -> Vec<CertificateDer<'static>> {
    let (_, connection) = session.stream().get_ref();
    connection
        .peer_certificates()
        .map(<[CertificateDer<'static>]>::to_vec)
        .unwrap_or_default()
}

/// Connects, greets, says EHLO (or HELO) and, when `settings.tls` asks for it, STARTTLS and
/// the handshake.
pub(super) async fn open(addr: SocketAddr, settings: &ProbeSettings) -> Result<Opened, Failed> {
    let t = settings.timeout;
    let secs = humantime::format_duration(t);
    let stream = match timeout(t, connect(addr, settings.source)).await {
        Err(_) => return Err(format!("no answer to TCP connect within {secs}").into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err("connection refused".into());
        }
        Ok(Err(e)) => return Err(format!("connect failed: {e}").into()),
        Ok(Ok(s)) => s,
    };
    // A pinned relay that offers no TLS is one a DANE sender refuses.
    let no_tls = |reason: String| match settings.tlsa {
        Some(_) => Failed::dane(
            format!(
                "{reason}; its TLSA records make a DANE sender require TLS, so it would refuse the relay"
            ),
            DaneFailure::NoTls,
        ),
        None => reason.into(),
    };
    let mut session = Session::new(stream, t);
    let greeting = session.reply("greeting").await?;
    if greeting.code != 220 {
        return Err(format!("greeting was \"{}\"", greeting.summary()).into());
    }
    let ehlo = session
        .command(&format!("EHLO {}", settings.ehlo), "EHLO")
        .await?;
    if ehlo.code != 250 {
        if !EHLO_UNKNOWN.contains(&ehlo.code) {
            return Err(format!("EHLO answered \"{}\"", ehlo.summary()).into());
        }
        if settings.tls.is_some() {
            let _ = session.quit().await;
            return Err(no_tls(format!(
                "EHLO answered \"{}\": STARTTLS is required, and a relay that does not know EHLO cannot offer it",
                ehlo.summary()
            )));
        }
        let helo = session
            .command(&format!("HELO {}", settings.ehlo), "HELO")
            .await
            .map_err(|e| format!("EHLO answered \"{}\", then {e}", ehlo.summary()))?;
        if helo.code != 250 {
            return Err(format!(
                "EHLO answered \"{}\" and HELO \"{}\"",
                ehlo.summary(),
                helo.summary()
            )
            .into());
        }
        session.quit().await?;
        return Ok(Opened::Plain(Passed {
            note: Some(format!(
                "EHLO refused (\"{}\"), HELO accepted",
                ehlo.summary()
            )),
        }));
    }
    let Some(tls) = &settings.tls else {
        session.quit().await?;
        return Ok(Opened::Plain(Passed::default()));
    };
    if !ehlo.has_extension("STARTTLS") {
        let _ = session.quit().await;
        return Err(no_tls("STARTTLS is required but not offered".into()));
    }
    let ready = session.command("STARTTLS", "STARTTLS").await?;
    if ready.code != 220 {
        return Err(format!("STARTTLS answered \"{}\"", ready.summary()).into());
    }
    // Plain text sent after the 220 would pass for a reply that came over TLS (the STARTTLS
    // response injection flaw).
    session.nothing_unasked("the TLS handshake began").await?;
    let name = settings
        .tls_name
        .clone()
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
    let connector = TlsConnector::from(tls.clone());
    let stream = match timeout(t, connector.connect(name, session.into_stream())).await {
        Err(_) => return Err(format!("no TLS handshake within {secs}").into()),
        Ok(Err(e)) if is_key_not_held(&e) => {
            let reason = format!("TLS handshake failed: {}", super::tls::KeyNotHeld);
            return Err(match settings.tlsa {
                Some(_) => Failed::dane(reason, DaneFailure::KeyNotHeld),
                None => reason.into(),
            });
        }
        Ok(Err(e)) => {
            let e = network_text::clean(&e.to_string(), TLS_ERROR_CHARS);
            return Err(format!("TLS handshake failed: {e}").into());
        }
        Ok(Ok(s)) => s,
    };
    Ok(Opened::Tls(Box::new(Session::new(stream, t))))
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
