//! One actor's changes fanned out to N simulated subscribers through local mode, against an
//! `@connections` that takes 5–15 ms per post and accepts 10,000 posts a second (429 beyond),
//! optionally with 1 % 500s and 0.5 % 410s. Reports the time until the last subscriber has
//! each change, the posts per second that took (as a share of the throttle), and what the
//! subscribers saw: duplicates and gaps (both must be 0), and how many the 410s dropped.
//!
//! An actor with more subscribers than `spread_at` (1,000) is spread over 32 partitions before
//! they subscribe (as an actor that grew would be), so each change goes out as 32 pages
//! through the local page queue to the page worker; `--one-partition` keeps them all in one
//! partition, posted by the fan-out invocation itself, for comparison.
//!
//! `cargo bench -p statecast-tests --bench fanout_scale [-- N... [--faults] [--one-partition]]` (default N: 1000 10000)

use std::time::{Duration, Instant};

use serde_json::json;
use statecast::ids::ActorKey;
use statecast::ports::SubscriptionStore;
use statecast::records::now_millis;
use statecast_local::gateway::{FaultPlan, LatencyRange};
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::subscribers::store_subscribers;
use statecast_tests::ws_client::WsClient;

const THROTTLE: u32 = 10_000;
const CHANGES: u64 = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let faults = args.iter().any(|a| a == "--faults");
    let one_partition = args.iter().any(|a| a == "--one-partition");
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000];
    }
    println!(
        "@connections: 5–15 ms per post, {THROTTLE} posts/s then 429{}; {CHANGES} changes per size; {}",
        if faults { ", 1 % 500s, 0.5 % 410s" } else { "" },
        if one_partition {
            "every actor in one partition, posted by the fan-out"
        } else {
            "actors over 1,000 subscribers spread over 32 partitions, posted in pages"
        }
    );
    println!(
        "{:>8} {:>7} {:>12} {:>10} {:>9} {:>10} {:>6} {:>5} {:>8} {:>6}",
        "N", "change", "last (ms)", "posts/s", "throttle", "reached", "dups", "gaps", "dropped", "pages"
    );
    for n in sizes {
        run(n, faults, one_partition).await;
    }
}

async fn run(n: usize, faults: bool, one_partition: bool) {
    let plan = FaultPlan {
        latency: Some("5ms..15ms".parse::<LatencyRange>().expect("range")),
        throughput: Some(THROTTLE),
        error_rate: if faults { 0.01 } else { 0.0 },
        gone_rate: if faults { 0.005 } else { 0.0 },
        seed: 42,
    };
    let stack = start_local(LocalOptions {
        connection_faults: plan,
        ..LocalOptions::default()
    })
    .await;
    let subscribers = stack.open_virtual(n);
    let db = store(&stack);
    let actor = format!("counter/scale-{n}");
    let key = ActorKey::parse(&format!("dev/{actor}")).expect("key");
    let expires_at = now_millis() / 1000 + 3600;
    let settings = statecast::service::Settings::default();
    if !one_partition && n > settings.spread_at {
        db.spread(&key, settings.spread_shards).await.expect("spread");
    }
    store_subscribers(&db, &key, &subscribers.ids, expires_at).await;

    let mut caller = WsClient::connect(&stack.ws_url).await;
    for change in 1..=CHANGES {
        let started = Instant::now();
        let reply = caller
            .request(
                json!({"action":"call","id":change,"actor":actor,"method":"increment"}),
                &mut Vec::new(),
            )
            .await;
        assert_eq!(reply["version"], change, "{reply}");
        let tally = &subscribers.tally;
        // Everyone the 410s have not dropped.
        let reached = tally.wait_for(change, n, Duration::from_secs(120)).await;
        let (_, last) = tally.reached(change);
        let elapsed = last.map_or(started.elapsed(), |at| at.into_std().duration_since(started));
        let rate = reached as f64 / elapsed.as_secs_f64();
        let load = std::sync::atomic::Ordering::Relaxed;
        let pages = stack.pages.counts().borrow().sent;
        println!(
            "{:>8} {:>7} {:>12.1} {:>10.0} {:>8.1}% {:>10} {:>6} {:>5} {:>8} {:>6}",
            n,
            change,
            elapsed.as_secs_f64() * 1000.0,
            rate,
            rate / f64::from(THROTTLE) * 100.0,
            reached,
            tally.duplicates.load(load),
            tally.gaps.load(load),
            tally.ended.load(load),
            pages,
        );
    }
    drop(caller);
    stack.shutdown().await;
}
