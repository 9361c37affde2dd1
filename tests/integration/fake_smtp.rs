//! Fake smart hosts: real SMTP listeners on loopback that behave well or badly, and go away.
//! Why not bench/common.py's relays: `cargo test` runs these in-process, misbehaving per test.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How a fake host answers.
#[derive(Clone)]
pub(crate) enum Behavior {
    /// `220`, a multi-line `250` to EHLO, `221` to QUIT.
    Healthy,
    /// Greets with `421 too busy`.
    Busy,
    /// Accepts the connection and never says anything.
    Silent,
    /// Starts a multi-line greeting and never finishes it.
    StallMidGreeting,
    /// Greets, then closes the connection when EHLO arrives.
    CloseOnEhlo,
    /// Greets after this delay.
    SlowGreeting(Duration),
    /// Greets after this delay, then never answers EHLO.
    GreetThenSilent(Duration),
    /// Greets with this text (code included), and is otherwise healthy.
    Greeting(&'static str),
    /// Healthy, and offers STARTTLS with this server config.
    Starttls(Arc<rustls::ServerConfig>),
    /// The next connection is refused by closing it at once; healthy afterwards.
    FailOnce,
    /// Connections from this source address are reset at once (a route or firewall that
    /// blocks one prober); healthy to everyone else.
    RefuseFrom(IpAddr),
    /// Sends this (a greeting and a reply nobody asked for) in one segment, then closes.
    PretalkThenClose(&'static str),
    /// Sends each of these as a segment of its own (a greeting, then a reply nobody asked
    /// for), then answers commands as a healthy host would.
    Pretalk(&'static [&'static str]),
    /// Answers EHLO with this reply, and HELO with 250; otherwise healthy.
    EhloRefused(&'static str),
    /// Offers STARTTLS and answers it with `220` and, in the same segment, a plain-text `250`
    /// nobody asked for, then does the handshake.
    StarttlsInjecting(Arc<rustls::ServerConfig>),
    /// Healthy, slowly: every reply leaves in pieces of a few bytes, each a segment of its own,
    /// this far apart.
    Trickle(Duration),
    /// Each connection behaves as the next of these, in turn.
    Cycle(Arc<[Behavior]>),
}

/// A distinct loopback address for each fake host of the whole test run, so that answers
/// can be checked host by host.
pub(crate) fn next_loopback() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::from([127, 60 + (n / 250) as u8, ((n % 250) + 1) as u8, 7])
}

/// A fake SMTP host.
pub(crate) struct FakeSmtp {
    pub addr: SocketAddr,
    behavior: Arc<Mutex<Behavior>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Sessions still open.
    pub open: Arc<AtomicUsize>,
    /// The source address of every connection accepted, in order.
    pub sources: Arc<Mutex<Vec<IpAddr>>>,
    tasks: Option<JoinSet<()>>,
}

impl FakeSmtp {
    /// Starts a host on a fresh loopback address and port.
    pub(crate) async fn start(behavior: Behavior) -> Self {
        Self::start_on(next_loopback(), behavior).await
    }

    /// Starts a host on `ip` (e.g. `::1`) and a fresh port.
    pub(crate) async fn start_on(ip: IpAddr, behavior: Behavior) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind fake smtp");
        Self::with_listener(listener, behavior)
    }

    fn with_listener(listener: TcpListener, behavior: Behavior) -> Self {
        let mut host = Self {
            addr: listener.local_addr().unwrap(),
            behavior: Arc::new(Mutex::new(behavior)),
            connections: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(AtomicUsize::new(0)),
            sources: Arc::new(Mutex::new(Vec::new())),
            tasks: None,
        };
        host.serve(listener);
        host
    }

    fn serve(&mut self, listener: TcpListener) {
        let behavior = self.behavior.clone();
        let connections = self.connections.clone();
        let open = self.open.clone();
        let sources = self.sources.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                let Ok((stream, from)) = listener.accept().await else {
                    continue;
                };
                sources.lock().unwrap().push(from.ip());
                let n = connections.fetch_add(1, Ordering::Relaxed);
                let now = {
                    let mut b = behavior.lock().unwrap();
                    let now = match &*b {
                        Behavior::Cycle(each) => each[n % each.len()].clone(),
                        other => other.clone(),
                    };
                    if matches!(now, Behavior::FailOnce) {
                        *b = Behavior::Healthy;
                    }
                    now
                };
                if matches!(now, Behavior::RefuseFrom(ip) if ip == from.ip()) {
                    // A reset rather than a close: what a REJECT rule gives the prober.
                    let _ = stream.set_zero_linger();
                    continue;
                }
                let open = open.clone();
                open.fetch_add(1, Ordering::Relaxed);
                sessions.spawn(async move {
                    session(stream, now).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }

    /// A port on a fresh loopback address where nothing listens: connections are refused.
    pub(crate) async fn closed() -> SocketAddr {
        let listener = TcpListener::bind((next_loopback(), 0)).await.unwrap();
        listener.local_addr().unwrap()
    }

    /// Stops listening and drops every open session: the host is gone.
    pub(crate) fn stop(&mut self) {
        self.tasks = None;
    }

    /// Listens again at the same address.
    pub(crate) async fn restart(&mut self) {
        assert!(self.tasks.is_none(), "stop before restart");
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the same address");
        self.serve(listener);
    }

    pub(crate) fn set_behavior(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap() = behavior;
    }

    /// `{ name = "..", addresses = [".."], port = .. }` for a config.
    pub(crate) fn host_entry(&self, name: &str) -> String {
        format!(
            "{{ name = \"{name}\", addresses = [\"{}\"], port = {} }}",
            self.addr.ip(),
            self.addr.port()
        )
    }
}

async fn session(stream: TcpStream, behavior: Behavior) {
    // Each write its own segment, for the hosts that split what they send.
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    match behavior {
        Behavior::PretalkThenClose(text) => {
            let _ = write.write_all(text.as_bytes()).await;
            return;
        }
        Behavior::Pretalk(segments) => {
            for segment in segments {
                if write.write_all(segment.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        Behavior::Silent => {
            // Hold the connection open, saying nothing, until the client gives up.
            while let Ok(Some(_)) = lines.next_line().await {}
            return;
        }
        Behavior::FailOnce => return,
        Behavior::StallMidGreeting => {
            let _ = write
                .write_all(b"220-fake.example ESMTP\r\n220-still")
                .await;
            while let Ok(Some(_)) = lines.next_line().await {}
            return;
        }
        Behavior::Busy => {
            let _ = write.write_all(b"421 4.3.2 too busy, try later\r\n").await;
            return;
        }
        Behavior::SlowGreeting(delay) => tokio::time::sleep(delay).await,
        Behavior::GreetThenSilent(delay) => {
            tokio::time::sleep(delay).await;
            let _ = write.write_all(b"220 fake.example ESMTP ready\r\n").await;
            while let Ok(Some(_)) = lines.next_line().await {}
            return;
        }
        _ => {}
    }
    let greeting: &[u8] = match &behavior {
        Behavior::Greeting(text) => text.as_bytes(),
        Behavior::Pretalk(_) => b"",
        _ => b"220 fake.example ESMTP ready\r\n",
    };
    if send(&mut write, greeting, &behavior).await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match (verb.as_str(), &behavior) {
            ("EHLO", Behavior::CloseOnEhlo) => return,
            ("EHLO", Behavior::EhloRefused(reply)) => reply.as_bytes(),
            ("HELO", _) => b"250 fake.example\r\n",
            ("EHLO", Behavior::Starttls(_) | Behavior::StarttlsInjecting(_)) => b"250-fake.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            ("EHLO", _) => b"250-fake.example greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
            ("STARTTLS", Behavior::Starttls(config) | Behavior::StarttlsInjecting(config)) => {
                let ready: &[u8] = match &behavior {
                    Behavior::StarttlsInjecting(_) => b"220 2.0.0 ready to start TLS\r\n250 2.0.0 injected\r\n",
                    _ => b"220 2.0.0 ready to start TLS\r\n",
                };
                let _ = write.write_all(ready).await;
                let stream = lines.into_inner().into_inner().reunite(write).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                if let Ok(tls) = acceptor.accept(stream).await {
                    let (r, mut w) = tokio::io::split(tls);
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line.to_ascii_uppercase().starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        let _ = w.write_all(b"250 ok\r\n").await;
                    }
                }
                return;
            }
            ("QUIT", _) => {
                let _ = send(&mut write, b"221 2.0.0 bye\r\n", &behavior).await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if send(&mut write, reply, &behavior).await.is_err() {
            return;
        }
    }
}

/// Writes `bytes` at once, or for a trickling host a few bytes at a time.
async fn send(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &[u8],
    behavior: &Behavior,
) -> std::io::Result<()> {
    let Behavior::Trickle(pause) = behavior else {
        return write.write_all(bytes).await;
    };
    for piece in bytes.chunks(5) {
        write.write_all(piece).await?;
        tokio::time::sleep(*pause).await;
    }
    Ok(())
}

/// A self-signed TLS server config for STARTTLS hosts.
pub(crate) fn tls_server_config() -> Arc<rustls::ServerConfig> {
    tls_server_config_and_pem().0
}

/// A TLS server config whose self-signed certificate names `relay.test`, and that certificate
/// as PEM (for a client that trusts it).
pub(crate) fn tls_server_config_and_pem() -> (Arc<rustls::ServerConfig>, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["relay.test".to_string()]).unwrap();
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    (Arc::new(config), pem)
}
