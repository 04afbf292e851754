//! What a client that never reads costs local mode in memory (issue 11): the resident set
//! before and during 1,000 unread ~100 KB replies, printed so the figures can be quoted
//! (`cargo test -p statecast-tests --test slow_reader_memory -- --nocapture`). Alone in its
//! binary, so no other test's allocations show in the process's figures.

mod hostile;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use statecast::ids::ActorKey;
use statecast::ports::ActorStore;
use statecast_local::LocalOptions;
use statecast_tests::ws_client::WsClient;

use hostile::*;

const MB: f64 = 1024.0 * 1024.0;

/// 1,000 `subscribe`s of a ~100 KB actor on a socket that is never read grow the process by
/// less than 20 MB: the connection is closed once its queue is full, not fed 100 MB of replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thousand_unread_replies_cost_bounded_memory() {
    let stack = start(LocalOptions::default()).await;
    build_big_todo(&stack).await;
    let mut reader = WsClient::connect(&stack.ws_url).await;
    let subscribed = reader
        .request(
            json!({"action":"subscribe","id":"r","actor":"todo/big"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["version"], json!(200), "{}", subscribed["type"]);
    wait_until("only the reader is connected", || async {
        stack.connection_count() == 1
    })
    .await;

    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let stuck = WsClient::connect(&stack.ws_url).await.socket;
    let mut frames: Vec<_> = (0..1000)
        .map(|i| json!({"action":"subscribe","id":i,"actor":"todo/big"}))
        .collect();
    // Handled after every reply exists, if the server keeps producing them.
    frames.push(json!({"action":"call","id":"done","actor":"counter/after-the-replies","method":"increment"}));
    let sending = send_without_reading(stuck, text_frames(frames));
    let marker = ActorKey::parse("dev/counter/after-the-replies").expect("key");
    let store = store(&stack);
    wait_until("the stuck client is closed or all its replies exist", || async {
        stack.connection_count() == 1 || store.load(&marker).await.expect("load").is_some()
    })
    .await;
    sampler.abort();
    let (peak, after) = (peak.load(Ordering::Relaxed), rss_bytes());
    println!(
        "VmRSS before {:.1} MB, peak {:.1} MB (+{:.1} MB), after {:.1} MB (+{:.1} MB)",
        before as f64 / MB,
        peak as f64 / MB,
        peak.saturating_sub(before) as f64 / MB,
        after as f64 / MB,
        after.saturating_sub(before) as f64 / MB,
    );
    let handled_all = store.load(&marker).await.expect("load").is_some();
    assert!(
        !handled_all,
        "the server produced every reply for a client that reads nothing"
    );
    assert!(
        peak.saturating_sub(before) < 20 * 1024 * 1024,
        "the process grew by {:.1} MB",
        peak.saturating_sub(before) as f64 / MB
    );
    drop(sending);
    stack.shutdown().await;
}
