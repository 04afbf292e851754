//! First fan-out latency figures for local mode: starts the stack in-process, subscribes N
//! WebSocket clients to one counter, makes M calls from one client, and records for each
//! call the time from sending it until every client holds the new version.
//!
//! `cargo run --release -p statecast-local --example fanout_latency -- 100 200` (N, M).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use statecast_local::{LocalOptions, LocalStack};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let subscribers = args.next().transpose()?.unwrap_or(100);
    let calls = args.next().transpose()?.unwrap_or(100);
    let stack = LocalStack::start(LocalOptions {
        port: 0,
        ..LocalOptions::default()
    })
    .await?;

    let mut clients = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(stack.ws_url.as_str(), None, true).await?;
        socket
            .send(Message::Text(
                json!({"action":"subscribe","id":0,"actor":"counter/bench"})
                    .to_string()
                    .into(),
            ))
            .await?;
        wait_for(&mut socket, |f| f["type"] == "subscribed").await?;
        clients.push(socket);
    }
    let (caller, watchers) = clients.split_first_mut().ok_or("at least one subscriber")?;
    let mut latencies = Vec::with_capacity(calls);
    for i in 0..calls {
        let started = Instant::now();
        let version = (i + 1) as u64;
        caller
            .send(Message::Text(
                json!({"action":"call","id":i,"actor":"counter/bench","method":"increment"})
                    .to_string()
                    .into(),
            ))
            .await?;
        wait_for(caller, |f| f["type"] != "result" && change_version(f) == Some(version)).await?;
        let waits = watchers
            .iter_mut()
            .map(|s| wait_for(s, move |f| change_version(f) == Some(version)));
        for result in futures::future::join_all(waits).await {
            result?;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "subscribers={subscribers} calls={calls} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    stack.shutdown().await;
    Ok(())
}

fn change_version(frame: &Value) -> Option<u64> {
    frame.get("to").or_else(|| frame.get("version")).and_then(Value::as_u64)
}

async fn wait_for(socket: &mut Socket, done: impl Fn(&Value) -> bool) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await?
            .ok_or("socket closed")??;
        if let Message::Text(text) = message {
            if done(&serde_json::from_str::<Value>(text.as_str())?) {
                return Ok(());
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
