//! A small WebSocket test client (tokio-tungstenite) speaking the wire protocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for one frame before it fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct WsClient {
    pub socket: Socket,
}

/// What ended a read.
#[derive(Debug, PartialEq)]
pub enum Received {
    Frame(Value),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        WsClient { socket }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket.send(Message::Text(text.into())).await.expect("frame sent");
    }

    /// The next JSON text frame, or how the socket closed.
    pub async fn next(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("a frame in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Received::Frame(serde_json::from_str(text.as_str()).expect("JSON frame"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f: CloseFrame| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next JSON frame; panics if the socket closed.
    pub async fn frame(&mut self) -> Value {
        match self.next().await {
            Received::Frame(frame) => frame,
            Received::Closed(code) => panic!("socket closed ({code:?}) while a frame was expected"),
        }
    }

    /// Sends `frame` and returns the reply carrying the same `id`, keeping other frames in `other`.
    pub async fn request(&mut self, frame: Value, other: &mut Vec<Value>) -> Value {
        let id = frame["id"].clone();
        self.send(frame).await;
        loop {
            let reply = self.frame().await;
            if reply.get("id") == Some(&id) && reply["type"] != "delta" {
                return reply;
            }
            other.push(reply);
        }
    }

    /// No frame arrives within `wait`.
    pub async fn is_quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.socket.next()).await.is_err()
    }
}
