//! What a million deliveries cost on AWS, from counted requests and measured handler time:
//! one `counter.increment` fanned out to N subscribers (N = 10, 1,000, 10,000, 100,000).
//! DynamoDB requests and the subscription items' bytes are counted on the embedded engine with
//! an SDK interceptor; handler durations are measured with `@connections` taking 10 ms a post
//! and 100 in flight (10,000 posts/s, the default account throttle). An actor over 1,000
//! subscribers is spread over 32 partitions: the fan-out queues 32 pages (SQS FIFO) and the
//! page workers post them, 16 at once (the template's maximum concurrency) against the one
//! throttle; their durations are summed
//! (GB-seconds), and each page is counted as its own worker invocation (an upper bound: Lambda
//! may batch pages of several groups into one). N = 100,000 is extrapolated from N = 10,000
//! (linear in N: read units, posts and time all are). The prices are inputs, kept in
//! [`PRICES`].
//!
//! `cargo bench -p statecast-tests --bench cost_model`

use std::sync::Arc;

use futures::StreamExt;
use std::time::{Duration, Instant};

use statecast::dynamo::{item_size, shard_of, DynamoStore};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::SubscriptionStore;
use statecast::records::now_millis;
use statecast::service::PageTask;
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::pages::CapturedPages;
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
    /// SQS FIFO: per million requests (each 64 KB of a request counts one).
    sqs_requests: f64,
}

const PRICES: Prices = Prices {
    apigw_messages: 1.00,
    apigw_connection_minutes: 0.25,
    lambda_requests: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    dynamodb_rru: 0.125,
    dynamodb_wru: 0.625,
    sqs_requests: 0.50,
};

/// Subscribers past which the fan-out spreads an actor, and over how many partitions
/// (`Settings::default()`).
fn spread() -> (usize, u32) {
    let settings = statecast::service::Settings::default();
    (settings.spread_at, settings.spread_shards)
}

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
    sqs_requests: f64,
    /// Billed time of every invocation the change took (the fan-out's, and the page workers').
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
            self.sqs_requests * PRICES.sqs_requests / m,
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
        sqs_requests: base.sqs_requests,
        handler: base.handler.mul_f64(scale),
        measured: false,
    });
    println!("per change (one counter.increment):");
    println!(
        "| N | Query requests | read units | write units | @connections messages | Lambda invocations | SQS requests | billed handler time | |\n|---|---|---|---|---|---|---|---|---|"
    );
    for c in &changes {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} ms | {} |",
            c.n,
            c.queries,
            c.read_units,
            c.write_units,
            c.messages,
            c.lambda_requests,
            c.sqs_requests,
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
/// the handlers' time against a 10 ms, 100-in-flight `@connections`.
async fn measure(n: usize) -> Change {
    let h = Harness::start().await;
    let actor = format!("counter/cost-{n}");
    let key = ActorKey::parse(&format!("dev/{actor}")).expect("key");
    let expires_at = now_millis() / 1000 + 3600;
    let ids: Vec<String> = (0..n).map(|i| format!("Cost{i:011}=")).collect();
    let subscription_bytes = item_size(&serde_dynamo::to_item(subscription(&key, &ids[0], expires_at)).expect("item"));
    let (spread_at, shards) = spread();
    let spread = n > spread_at;
    if spread {
        h.store.spread(&key, shards).await.expect("spread");
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
    let queue = Arc::new(CapturedPages::default());
    let fanout = h
        .fanout_service_with(counted.clone(), sender.clone())
        .with_pages(queue.clone());
    let started = Instant::now();
    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    let mut handler = started.elapsed();
    assert!(response.batch_item_failures.is_empty());
    let pages = queue.take();
    // The page workers, as many at once as the template lets Lambda run, against the one
    // throttle; each bills its own time.
    let worker = h.fanout_service_with(counted, sender.clone());
    let workers = statecast_local::pages::PageQueueConfig::default().workers;
    let timed = pages.iter().map(|page| {
        let task: PageTask = serde_json::from_str(&page.body).expect("a page");
        let worker = &worker;
        async move {
            let started = Instant::now();
            worker.deliver_page(task).await.expect("delivered");
            started.elapsed()
        }
    });
    handler += futures::stream::iter(timed)
        .buffer_unordered(workers)
        .collect::<Vec<Duration>>()
        .await
        .into_iter()
        .sum::<Duration>();
    assert_eq!(sender.sent().len(), n, "every subscriber got the change");
    let requests = log.take();
    let queries = requests.iter().filter(|r| *r == "Query").count();
    // Strongly consistent reads: 4 KB per unit, per page of up to 1,000 items.
    let units = |items: usize| {
        let full = items / 1000;
        let rest = items % 1000;
        full as f64 * (1000.0 * subscription_bytes as f64 / 4096.0).ceil()
            + (rest as f64 * subscription_bytes as f64 / 4096.0).ceil().max(1.0)
    };
    let mut per_shard = vec![0usize; if spread { shards as usize } else { 1 }];
    for id in &ids {
        let shard = if spread {
            shard_of(&ConnectionId::new(id.clone()).expect("id"), shards)
        } else {
            0
        };
        per_shard[shard as usize] += 1;
    }
    // A spread actor's fan-out reads shard 0's first page to learn it is spread.
    let first_page = if spread { units(per_shard[0].min(1000)) } else { 0.0 };
    let read_units = first_page
        + per_shard.iter().map(|&items| units(items)).sum::<f64>()
        // the call's two strongly consistent GetItem (connection, actor)
        + call_requests.iter().filter(|r| *r == "GetItem").count() as f64;
    let write_units = call_requests.iter().filter(|r| *r == "PutItem").count() as f64;
    // Per 10 pages: SendMessageBatch, and the event source mapping's ReceiveMessage and
    // DeleteMessageBatch.
    let sqs_requests = 3.0 * pages.len().div_ceil(10) as f64;
    Change {
        n,
        queries,
        read_units,
        write_units,
        messages: n as f64,
        lambda_requests: 1.0 + pages.len() as f64,
        sqs_requests,
        handler,
        measured: true,
    }
}
