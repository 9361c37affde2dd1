//! HTTP/1.0 by hand to the admin API and the control socket: what a request looks like on the
//! wire is part of what the tests check.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::DEADLINE;

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

/// The value of the sample `name{labels}` in a scrape (labels in the exporter's order).
pub(crate) fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
