//! A minimal HTTP/1.1 client for tests: one request per connection (`Connection: close`),
//! the status and the body read back. Enough for the local trigger endpoint; real requests
//! over real sockets.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: its status and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// Sends `method url` with `headers` and `body`; `url` is `http://host:port/path`.
pub async fn request(method: &str, url: &str, headers: &[(&str, String)], body: &[u8]) -> HttpResponse {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).await.expect("connects");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("writes the head");
    stream.write_all(body).await.expect("writes the body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reads the response");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    HttpResponse {
        status,
        body: body.to_owned(),
    }
}

/// `POST url` with `headers` and `body`.
pub async fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> HttpResponse {
    request("POST", url, headers, body).await
}
