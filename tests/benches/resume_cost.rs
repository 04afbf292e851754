//! What resuming costs and saves, counted (exact, not timed): bytes a resuming client
//! downloads against a fresh subscribe (a 1,000-item todo list, 10 missed edits), and what the
//! change log adds to every change — DynamoDB requests (counted by an SDK interceptor) and
//! stored bytes (the item with and without its log, by DynamoDB's size rules).
//!
//! `cargo bench -p statecast-tests --bench resume_cost`

use std::sync::Arc;

use serde_json::{json, Value};
use statecast::app::application;
use statecast::application::{Services, Stores};
use statecast::dynamo::{item_size, DynamoStore};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::ActorStore;
use statecast::service::MessageService;
use statecast::workflow::WorkflowSettings;
use statecast_tests::request_log::RequestLog;
use statecast_tests::Harness;

async fn send(service: &MessageService, c: &ConnectionId, frame: Value) -> String {
    service
        .handle_frame(c, &frame.to_string(), "bench")
        .await
        .expect("a reply")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let h = Harness::start().await;
    let log = RequestLog::default();
    let store = Arc::new(DynamoStore::new(log.client(&h.sdk), h.tables.clone()));
    let services = Services::new(
        application().expect("valid"),
        Stores::all(store.clone()),
        h.settings.clone(),
        WorkflowSettings::default(),
    );
    let messages = services.message();
    let c = h.connect("bench", None).await;
    for i in 0..1000 {
        let add = json!({"action":"call","actor":"todo/big","method":"add","args":{"title":format!("item {i}: buy something useful for the house")}});
        send(&messages, &c, add).await;
    }
    let key = ActorKey::parse("dev/todo/big").expect("key");
    let held = store.load(&key).await.expect("load").expect("stored");

    log.take();
    let fresh = send(&messages, &c, json!({"action":"subscribe","id":1,"actor":"todo/big"})).await;
    let subscribe_requests = log.take();
    let mut sizes = Vec::new();
    let mut call_requests = Vec::new();
    for i in 0..10 {
        let toggle =
            json!({"action":"call","actor":"todo/big","method":"toggle","args":{"id":(1 + i * 97).to_string()}});
        send(&messages, &c, toggle).await;
        call_requests.push(log.take());
        let record = store.load(&key).await.expect("load").expect("stored");
        log.take();
        let with_log = item_size(&serde_dynamo::to_item(&record).expect("item"));
        let without_log = item_size(
            &serde_dynamo::to_item(statecast::records::ActorRecord {
                log: Vec::new(),
                trace: None,
                ..record.clone()
            })
            .expect("item"),
        );
        sizes.push((with_log, without_log, record.log.len()));
    }
    let since = json!({"epoch": held.epoch.0, "version": held.version.0});
    let resumed = send(
        &messages,
        &c,
        json!({"action":"subscribe","id":2,"actor":"todo/big","since":since}),
    )
    .await;
    let resume_requests = log.take();
    let resumed_json: Value = serde_json::from_str(&resumed).expect("JSON");
    assert_eq!(resumed_json["resumed"], true, "{resumed}");

    println!("1,000-item todo list, 10 missed single-item edits");
    println!(
        "  fresh subscribe reply:   {:>8} bytes ({} DynamoDB requests: {:?})",
        fresh.len(),
        subscribe_requests.len(),
        subscribe_requests
    );
    println!(
        "  resuming reply:          {:>8} bytes ({} DynamoDB requests: {:?})",
        resumed.len(),
        resume_requests.len(),
        resume_requests
    );
    println!(
        "  resume / fresh:          {:>8.2} %",
        100.0 * resumed.len() as f64 / fresh.len() as f64
    );
    let (with, without, entries) = sizes.last().copied().expect("sizes");
    println!("per change (toggle), as stored:");
    println!(
        "  DynamoDB requests per call: {:?} (the log is written in the same PutItem)",
        call_requests.last().expect("requests")
    );
    println!("  item size with its log:    {with:>8} bytes ({entries} patches kept), without: {without} bytes");
    println!(
        "  extra bytes per write:     {:>8} bytes (+{:.1} %), write units {} → {}",
        with - without,
        100.0 * (with - without) as f64 / without as f64,
        without.div_ceil(1024),
        with.div_ceil(1024)
    );
}
