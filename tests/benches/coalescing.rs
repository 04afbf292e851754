//! Frames and bytes each subscriber receives with and without coalescing: one todo actor
//! changed ~100 times a second for a few seconds with N subscribers, through local mode's real
//! sockets (the fan-out's posts in-process, local mode's default). Every subscriber must end
//! at the last version, holding the stored state.
//!
//! `cargo bench -p statecast-tests --bench coalescing [-- SUBSCRIBERS SECONDS]`

use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::StreamExt;
use serde_json::json;
use statecast::service::Settings;
use statecast_local::LocalOptions;
use statecast_tests::local::start_local;
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::WsClient;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subscribers = args.first().copied().unwrap_or(1000) as usize;
    let seconds = args.get(1).copied().unwrap_or(3);
    println!("one todo actor, ~100 changes/s for {seconds} s, {subscribers} subscribers (local mode, in-process @connections)");
    println!(
        "{:>10} {:>8} {:>14} {:>14} {:>16} {:>12}",
        "coalesce", "changes", "frames/sub", "bytes/sub", "bytes/change/sub", "all in (ms)"
    );
    for coalesce in [false, true] {
        run(coalesce, subscribers, seconds).await;
    }
}

async fn run(coalesce: bool, subscribers: usize, seconds: u64) {
    let stack = start_local(LocalOptions {
        settings: Settings {
            coalesce,
            ..Settings::default()
        },
        ..LocalOptions::default()
    })
    .await;
    let mut writer = WsClient::connect(&stack.ws_url).await;
    for i in 0..40 {
        let add = json!({"action":"call","id":i,"actor":"todo/hot","method":"add","args":{"title":format!("item {i} of the list")}});
        writer.request(add, &mut Vec::new()).await;
    }
    let mut clients = Vec::new();
    for _ in 0..subscribers {
        let mut client = WsClient::connect(&stack.ws_url).await;
        let reply = client
            .request(
                json!({"action":"subscribe","id":"s","actor":"todo/hot"}),
                &mut Vec::new(),
            )
            .await;
        clients.push((client, Replica::from_subscribed(&reply)));
    }
    let changes = 100 * seconds;
    let last = 40 + changes;
    let readers = clients.into_iter().map(|(mut client, mut replica)| async move {
        let (mut frames, mut bytes) = (0u64, 0u64);
        let default = json!({"items": {}, "nextId": 0});
        while replica.version < last {
            let Some(Ok(Message::Text(text))) = client.socket.next().await else {
                panic!("socket closed")
            };
            frames += 1;
            bytes += text.len() as u64;
            let frame: serde_json::Value = serde_json::from_str(text.as_str()).expect("JSON");
            assert_eq!(replica.apply(&frame, &default), Applied::Applied, "in order");
        }
        (frames, bytes, replica)
    });
    let readers = tokio::spawn(join_all(readers));
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for i in 0..changes {
        tick.tick().await;
        let id = 1 + i % 40;
        let toggle = json!({"action":"call","id":format!("t{i}"),"actor":"todo/hot","method":"toggle","args":{"id":id.to_string()}});
        writer.send(toggle).await;
    }
    let results = readers.await.expect("readers");
    let elapsed = start.elapsed();
    let n = results.len() as u64;
    let frames: u64 = results.iter().map(|r| r.0).sum::<u64>() / n;
    let bytes: u64 = results.iter().map(|r| r.1).sum::<u64>() / n;
    let states: std::collections::BTreeSet<String> = results.iter().map(|r| r.2.state.to_string()).collect();
    assert_eq!(states.len(), 1, "every subscriber holds the same state");
    println!(
        "{:>10} {:>8} {:>14} {:>14} {:>16} {:>12}",
        coalesce,
        changes,
        frames,
        bytes,
        bytes / changes,
        elapsed.as_millis()
    );
    stack.shutdown().await;
}
