//! What a relay shows over STARTTLS, for `smarthostd tlsa`: the chain it presents, after a
//! handshake whose signature proved it holds that chain's key. Any certificate is accepted:
//! the point is to see it.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::time::timeout;

use super::failure::Failed;
use super::smtp::{Opened, ProbeSettings, open, peer_chain};
use super::tls::client_config;

/// A relay's side of a STARTTLS handshake.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    /// Its chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The TLS version agreed, as rustls names it (`TLSv1_3`).
    pub version: Option<String>,
}

/// Connects to `addr`, greets as `ehlo`, does STARTTLS (sending `sni` as the server name, when
/// given) and returns what the relay presented. Each step is bounded by `step`; the whole by
/// the steps of a STARTTLS probe.
pub(crate) async fn shown(
    addr: SocketAddr,
    ehlo: &str,
    step: Duration,
    sni: Option<ServerName<'static>>,
) -> Result<Shown, Failed> {
    let settings = ProbeSettings {
        timeout: step,
        ehlo: ehlo.to_string(),
        tls: Some(client_config(false, None).map_err(Failed::from)?),
        tls_name: sni,
        source: None,
        tlsa: None,
    };
    let longest = settings.longest();
    let dialogue = async {
        match open(addr, &settings).await? {
            Opened::Tls(mut session) => {
                let chain = peer_chain(&session);
                let version = session
                    .stream()
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"));
                let _ = session.quit().await;
                Ok(Shown { chain, version })
            }
            Opened::Plain(_) => Err(Failed::from("the relay was not asked for STARTTLS")),
        }
    };
    match timeout(longest, dialogue).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the SMTP dialogue took longer than {}",
            humantime::format_duration(longest)
        )
        .into()),
    }
}
