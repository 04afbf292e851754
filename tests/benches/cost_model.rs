//! What a million deliveries cost on AWS, from counted requests and measured handler time:
//! one `counter.increment` fanned out to N subscribers (N = 10, 1,000, 10,000, 100,000).
//! DynamoDB requests and the subscription items' bytes are counted on the embedded engine with
//! an SDK interceptor; the fan-out handler's duration is measured with `@connections` taking
//! 10 ms a post and 100 in flight (10,000 posts/s, the default account throttle). N = 100,000
//! is extrapolated from N = 10,000 (linear in N: pages, posts and time all are). The prices
//! are inputs, kept in [`PRICES`].
//!
//! `cargo bench -p statecast-tests --bench cost_model`

use std::sync::Arc;
use std::time::{Duration, Instant};

use statecast::dynamo::{item_size, DynamoStore};
use statecast::ids::ActorKey;
use statecast::records::now_millis;
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::request_log::RequestLog;
use statecast_tests::subscribers::{store_subscribers, subscription};
use statecast_tests::Harness;

/// List prices (us-east-1, on-demand, arm64; 2026-11). Inputs: change them here.
struct Prices {
    /// API Gateway WebSocket: per million messages (each 32 KB or part of it counts one).
    apigw_messages: f64,
    /// API Gateway WebSocket: per million connection minutes.
    apigw_connection_minutes: f64,
    /// Lambda: per million requests.
    lambda_requests: f64,
    /// Lambda arm64: per GB-second.
    lambda_gb_second: f64,
    /// DynamoDB on-demand: per million read request units (4 KB strongly consistent).
    dynamodb_rru: f64,
    /// DynamoDB on-demand: per million write request units (1 KB).
    dynamodb_wru: f64,
    /// SQS standard: per million requests (none on this path yet).
    sqs_requests: f64,
}

const PRICES: Prices = Prices {
    apigw_messages: 1.00,
    apigw_connection_minutes: 0.25,
    lambda_requests: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    dynamodb_rru: 0.125,
    dynamodb_wru: 0.625,
    sqs_requests: 0.40,
};

/// The fan-out function's memory (template.yaml `Globals.Function.MemorySize`).
const FANOUT_GB: f64 = 0.25;

/// What one change to N subscribers costs.
struct Change {
    n: usize,
    queries: usize,
    read_units: f64,
    write_units: f64,
    messages: f64,
    lambda_requests: f64,
    handler: Duration,
    measured: bool,
}

impl Change {
    fn dollars(&self) -> [f64; 5] {
        let m = 1e6;
        [
            self.messages * PRICES.apigw_messages / m,
            self.lambda_requests * PRICES.lambda_requests / m
                + self.handler.as_secs_f64() * FANOUT_GB * PRICES.lambda_gb_second,
            self.read_units * PRICES.dynamodb_rru / m,
            self.write_units * PRICES.dynamodb_wru / m,
            0.0 * PRICES.sqs_requests / m,
        ]
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut changes = Vec::new();
    for n in [10, 1_000, 10_000] {
        changes.push(measure(n).await);
    }
    let base = &changes[2];
    let scale = 10.0;
    changes.push(Change {
        n: 100_000,
        queries: base.queries * 10,
        read_units: base.read_units * scale,
        write_units: base.write_units,
        messages: base.messages * scale,
        lambda_requests: base.lambda_requests,
        handler: base.handler.mul_f64(scale),
        measured: false,
    });
    println!("per change (one counter.increment):");
    println!(
        "| N | Query requests | read units | write units | @connections messages | fan-out handler | |\n|---|---|---|---|---|---|---|"
    );
    for c in &changes {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.1} ms | {} |",
            c.n,
            c.queries,
            c.read_units,
            c.write_units,
            c.messages,
            c.handler.as_secs_f64() * 1000.0,
            if c.measured { "measured" } else { "×10 of N = 10,000" }
        );
    }
    println!("\nper million deliveries (USD):");
    println!("| N | API Gateway messages | Lambda (requests + GB-s) | DynamoDB reads | DynamoDB writes | SQS | total |\n|---|---|---|---|---|---|---|");
    for c in &changes {
        let per = 1e6 / c.n as f64;
        let d = c.dollars().map(|x| x * per);
        let total: f64 = d.iter().sum();
        println!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | **{:.4}** |",
            c.n, d[0], d[1], d[2], d[3], d[4], total
        );
    }
    println!(
        "\nconnection minutes: a subscriber connected for an hour costs {:.6} USD (60 × {} per million minutes), whatever it receives.",
        60.0 * PRICES.apigw_connection_minutes / 1e6,
        PRICES.apigw_connection_minutes
    );
}

/// One change to `n` subscribers on the embedded engine: counted requests and bytes, and
/// the fan-out handler's time against a 10 ms, 100-in-flight `@connections`.
async fn measure(n: usize) -> Change {
    let h = Harness::start().await;
    let actor = format!("counter/cost-{n}");
    let key = ActorKey::parse(&format!("dev/{actor}")).expect("key");
    let expires_at = now_millis() / 1000 + 3600;
    let mut subscription_bytes = 0;
    let ids: Vec<String> = (0..n).map(|i| format!("Cost{i:011}=")).collect();
    for id in ids.iter().take(1) {
        let record = subscription(&key, id, expires_at);
        subscription_bytes = item_size(&serde_dynamo::to_item(&record).expect("item"));
    }
    store_subscribers(&h.store, &key, &ids, expires_at).await;
    let mut stream = h.actor_stream().await;
    stream.read_new().await;
    let caller = h.connect("caller", None).await;
    let log = RequestLog::default();
    let counted = Arc::new(DynamoStore::new(log.client(&h.sdk), h.tables.clone()));
    let messages = statecast::application::Services::new(
        h.app.clone(),
        statecast::application::Stores::all(counted.clone()),
        h.settings.clone(),
        Default::default(),
    )
    .message();
    let reply = messages
        .handle(
            &caller,
            &format!(r#"{{"action":"call","actor":"{actor}","method":"increment"}}"#),
            "r",
        )
        .await;
    assert!(
        matches!(reply, statecast::protocol::ServerMessage::Result { .. }),
        "{reply:?}"
    );
    let call_requests = log.take();
    let event = stream.next_event().await;

    let sender = Arc::new(RecordingSender::throttling(Duration::from_millis(10), 100));
    let fanout = h.fanout_service_with(counted, sender.clone());
    let started = Instant::now();
    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    let handler = started.elapsed();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(sender.sent().len(), n, "every subscriber got the change");
    let fanout_requests = log.take();
    let queries = fanout_requests.iter().filter(|r| *r == "Query").count();
    // Strongly consistent reads: 4 KB per unit, per page of up to 1,000 items.
    let pages = n.div_ceil(1000);
    let per_page = (n.min(1000) * subscription_bytes) as f64;
    let read_units = pages as f64 * (per_page / 4096.0).ceil()
        // the call's two strongly consistent GetItem (connection, actor)
        + call_requests.iter().filter(|r| *r == "GetItem").count() as f64;
    let write_units = call_requests.iter().filter(|r| *r == "PutItem").count() as f64;
    Change {
        n,
        queries,
        read_units,
        write_units,
        messages: n as f64,
        lambda_requests: 1.0,
        handler,
        measured: true,
    }
}
