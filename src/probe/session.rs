//! One SMTP connection as the probe speaks on it: a command, then its reply, each bounded by
//! the step timeout.
//!
//! A reply answers the command written before it (RFC 5321 section 4.2). Bytes that arrived
//! before a command was sent — left over after the last reply, or already waiting on the
//! socket — answer nothing the probe asked, and a relay that sends them is not speaking SMTP
//! (Postfix calls it a pipelining violation). Taken as the next reply, a `250` sent ahead with
//! the greeting would pass for an answer to EHLO from a relay that never read it; so every
//! command first checks that nothing is waiting, on plain connections and inside TLS alike.

use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::timeout;

use super::reply::{Reply, ReplyReader};
use crate::network_text;

/// The longest quote of bytes a relay sent unasked.
const EARLY_CHARS: usize = 60;

/// A connection and its reply reader.
pub(super) struct Session<S> {
    stream: S,
    reader: ReplyReader,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            reader: ReplyReader::default(),
            timeout,
        }
    }

    /// The connection, for the TLS handshake. Call [`nothing_unasked`](Self::nothing_unasked)
    /// first: what the reader still holds is dropped.
    pub(super) fn into_stream(self) -> S {
        self.stream
    }

    /// The connection, to ask it what the TLS handshake brought.
    pub(super) fn stream(&self) -> &S {
        &self.stream
    }

    /// Reads one reply; `step` names what it answers, for the failure reason.
    pub(super) async fn reply(&mut self, step: &str) -> Result<Reply, String> {
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
                Err(e) => return Err(read_failure(&e)),
            };
            if let Some(r) = self.reader.feed(&buf[..n]) {
                return r.map_err(|e| e.to_string());
            }
        }
    }

    /// Fails when the relay has sent anything since its last reply, or has closed the
    /// connection: `before` completes "… before {before}" in the reason. Reads only what is
    /// already there; never waits.
    pub(super) async fn nothing_unasked(&mut self, before: &str) -> Result<(), String> {
        if !self.reader.buffered().is_empty() {
            return Err(early(self.reader.buffered(), before));
        }
        let mut buf = [0u8; 512];
        let mut read = ReadBuf::new(&mut buf);
        let stream = &mut self.stream;
        let now = std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            })
        })
        .await;
        match now {
            None => Ok(()),
            Some(Ok(())) if read.filled().is_empty() => {
                Err(format!("connection closed before {before}"))
            }
            Some(Ok(())) => Err(early(read.filled(), before)),
            Some(Err(e)) => Err(format!("{} before {before}", read_failure(&e))),
        }
    }

    /// Sends `line` and reads its reply, once nothing unasked is waiting.
    pub(super) async fn command(&mut self, line: &str, step: &str) -> Result<Reply, String> {
        self.nothing_unasked(&format!("{step} was sent")).await?;
        self.send(line, step).await?;
        self.reply(step).await
    }

    async fn send(&mut self, line: &str, step: &str) -> Result<(), String> {
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
            Err(_) => Err(format!("could not send {step} within {secs}")),
            Ok(Err(e)) => Err(format!("sending {step} failed: {e}")),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Says goodbye. A relay that spoke unasked or hung up before QUIT fails (it would do the
    /// same to a sender's next command); the reply to QUIT itself no longer matters. Dropping
    /// the session closes the connection.
    pub(super) async fn quit(&mut self) -> Result<(), String> {
        self.nothing_unasked("QUIT was sent").await?;
        if self.send("QUIT", "QUIT").await.is_ok() {
            let _ = self.reply("QUIT").await;
        }
        Ok(())
    }
}

/// The reason for bytes that arrived unasked: their first line, quoted and made safe.
fn early(bytes: &[u8], before: &str) -> String {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let quoted = network_text::clean_bytes(first, EARLY_CHARS);
    format!("sent \"{quoted}\" before {before}: pipelining violation (RFC 5321 section 4.2)")
}

fn read_failure(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => format!("read failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_reply_that_came_before_its_command_fails_it_unsent() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let mut session = Session::new(client, T);
        relay.write_all(b"220 hi\r\n").await.unwrap();
        assert_eq!(session.reply("greeting").await.unwrap().code, 220);
        relay.write_all(b"250 early\r\n").await.unwrap();
        let e = session.command("EHLO x", "EHLO").await.unwrap_err();
        assert_eq!(
            e,
            "sent \"250 early\" before EHLO was sent: pipelining violation (RFC 5321 section 4.2)"
        );
        drop(session);
        let mut sent = Vec::new();
        relay.read_to_end(&mut sent).await.unwrap();
        assert!(sent.is_empty(), "EHLO was not written: {sent:?}");
    }

    #[tokio::test]
    async fn leftovers_of_the_last_read_count_as_sent_early() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let mut session = Session::new(client, T);
        relay
            .write_all(b"220 hi\r\n250 x\x1b[2J\r\n")
            .await
            .unwrap();
        assert_eq!(session.reply("greeting").await.unwrap().code, 220);
        let e = session.quit().await.unwrap_err();
        assert!(
            e.starts_with("sent \"250 x\\u{1b}[2J\" before QUIT was sent"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_relay_that_hung_up_before_the_command_fails_it() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let mut session = Session::new(client, T);
        relay.write_all(b"220 hi\r\n").await.unwrap();
        assert_eq!(session.reply("greeting").await.unwrap().code, 220);
        drop(relay);
        let e = session.command("EHLO x", "EHLO").await.unwrap_err();
        assert_eq!(e, "connection closed before EHLO was sent");
    }

    #[tokio::test]
    async fn a_reply_in_pieces_after_its_command_is_one_reply() {
        let (client, mut relay) = tokio::io::duplex(4096);
        let mut session = Session::new(client, T);
        relay.write_all(b"220 hi\r\n").await.unwrap();
        session.reply("greeting").await.unwrap();
        let answer = tokio::spawn(async move {
            let mut line = [0u8; 8];
            let n = relay.read(&mut line).await.unwrap();
            assert_eq!(&line[..n], b"EHLO x\r\n");
            for piece in [
                &b"250-relay"[..],
                b".example\r\n250-PIPE",
                b"LINING\r\n250 OK\r\n",
            ] {
                relay.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            relay
        });
        let r = session.command("EHLO x", "EHLO").await.unwrap();
        assert_eq!(r.lines, ["relay.example", "PIPELINING", "OK"]);
        let _relay = answer.await.unwrap();
        session.nothing_unasked("QUIT was sent").await.unwrap();
    }
}
