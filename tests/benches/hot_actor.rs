//! Fan-out lag under one hot actor: a counter incremented RATE times a second (paced `call`s
//! from a real WebSocket client) for SECONDS, with N simulated subscribers, `@connections`
//! taking 5–15 ms per post and accepting 10,000 posts a second (429 beyond).
//!
//! Lag = the time a subscriber receives a frame − the time the change that frame brings it to
//! (a delta's `to`, a snapshot's `version`) was written. The stream records of the embedded
//! engine carry `ApproximateCreationDateTime` in whole seconds, too coarse here, so the time
//! written is the actor item's `updatedAt` (epoch ms, set by the call just before its
//! conditional write), read back from the stream records' new images after the run. The
//! fan-out coalesces one actor's consecutive changes of a stream batch into one frame, so a
//! subscriber gets fewer frames than changes: lag is counted once per frame, against its `to`.
//!
//! `--trim` keeps local mode's stream trimming on (every record the fan-out has processed is
//! deleted, as in `statecast-local`), so the stream cannot be read back: the time written is
//! then the time the call's reply arrived (a few ms after the write, the same for every
//! window). Comparing the two shows whether a growing, untrimmed stream slows the fan-out.
//!
//! Prints p50/p99/max overall and per 10-second window of commit time (a lag that grows from
//! window to window means the fan-out falls behind), frames delivered, duplicates and gaps
//! (both must be 0), and the changes per second achieved.
//!
//! `cargo bench -p statecast-tests --bench hot_actor [-- --seconds 60 --rate 100 --subscribers 1000 --trim]`

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::json;
use statecast::ids::ActorKey;
use statecast::records::{now_millis, ActorRecord};
use statecast_local::engine::StreamRetention;
use statecast_local::gateway::{FaultPlan, LatencyRange, Receipt};
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::stream_reader::StreamReader;
use statecast_tests::subscribers::store_subscribers;
use statecast_tests::ws_client::WsClient;
use tokio::time::MissedTickBehavior;

const THROTTLE: u32 = 10_000;
const WINDOW_MS: i64 = 10_000;
const ACTOR: &str = "counter/hot";

/// `--seconds`, `--rate` (changes per second), `--subscribers` and `--trim`; anything else
/// (such as the `--bench` cargo passes) is ignored.
struct Args {
    seconds: u64,
    rate: u64,
    subscribers: usize,
    trim: bool,
}

impl Args {
    fn parse() -> Args {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let value = |name: &str, default: u64| {
            args.windows(2)
                .find(|pair| pair[0] == name)
                .map_or(default, |pair| pair[1].parse().expect("a whole number"))
        };
        Args {
            seconds: value("--seconds", 60).max(1),
            rate: value("--rate", 100).max(1),
            subscribers: value("--subscribers", 1000).max(1) as usize,
            trim: args.iter().any(|arg| arg == "--trim"),
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    println!(
        "one counter, {} changes/s for {} s, {} simulated subscribers; @connections 5–15 ms per post, {THROTTLE} posts/s then 429",
        args.rate, args.seconds, args.subscribers
    );
    if args.trim {
        println!("stream trimming on; lag = frame received − the arrival of the call's reply (ms)");
    } else {
        println!("stream trimming off; lag = frame received − the change's commit time (the actor item's updatedAt, ms; local stream records carry whole seconds)");
    }
    let plan = FaultPlan {
        latency: Some("5ms..15ms".parse::<LatencyRange>().expect("range")),
        throughput: Some(THROTTLE),
        seed: 42,
        ..FaultPlan::default()
    };
    let stack = start_local(LocalOptions {
        connection_faults: plan,
        // Without --trim the commit times are read back from the stream after the run.
        stream_retention: StreamRetention {
            trim_processed: args.trim,
            ..StreamRetention::default()
        },
        ..LocalOptions::default()
    })
    .await;
    let subscribers = stack.open_virtual(args.subscribers);
    let key = ActorKey::parse(&format!("dev/{ACTOR}")).expect("key");
    let expires_at = now_millis() / 1000 + 3600;
    store_subscribers(&store(&stack), &key, &subscribers.ids, expires_at).await;
    let tally = subscribers.tally.clone();
    tally.keep_receipts();

    let (changes, elapsed, replied) = drive(&stack.ws_url, &args).await;
    let reached = tally
        .wait_for(changes, args.subscribers, Duration::from_secs(120))
        .await;
    let receipts = tally.take_receipts();
    let written = if args.trim {
        replied
    } else {
        let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
        let mut reader = StreamReader::open(&stack.sdk, &dynamo, &stack.tables.actors).await;
        commit_times(reader.read_new().await, &key)
    };
    stack.shutdown().await;

    let load = Ordering::Relaxed;
    println!(
        "changes {changes} ({:.1}/s achieved), {reached} of {} subscribers reached v{changes}; frames {} ({:.1} versions each), duplicates {}, gaps {}",
        changes as f64 / elapsed.as_secs_f64(),
        args.subscribers,
        receipts.len(),
        (changes as f64 * args.subscribers as f64) / receipts.len().max(1) as f64,
        tally.duplicates.load(load),
        tally.gaps.load(load),
    );
    report(&lags(&receipts, &written));
}

/// Increments the counter `args.rate` times a second for `args.seconds` through one
/// WebSocket client, each call answered before the next (a late one is caught up at once);
/// returns the last version written, the time taken and when each version's reply arrived
/// (epoch ms).
async fn drive(url: &str, args: &Args) -> (u64, Duration, HashMap<u64, i64>) {
    let mut writer = WsClient::connect(url).await;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let total = args.rate * args.seconds;
    let started = Instant::now();
    let mut version = 0;
    let mut replied = HashMap::new();
    for id in 1..=total {
        tick.tick().await;
        let call = json!({"action": "call", "id": id, "actor": ACTOR, "method": "increment"});
        let reply = writer.request(call, &mut Vec::new()).await;
        version = reply["version"].as_u64().expect("a result with its version");
        replied.insert(version, now_millis());
    }
    (version, started.elapsed(), replied)
}

/// Each version of `key` and its `updatedAt` (epoch ms), from the stream's new images.
fn commit_times(records: Vec<aws_lambda_events::dynamodb::EventRecord>, key: &ActorKey) -> HashMap<u64, i64> {
    records
        .into_iter()
        .filter_map(|r| serde_dynamo::from_item::<_, ActorRecord>(r.change.new_image).ok())
        .filter(|record| &record.actor_key == key)
        .map(|record| (record.version.0, record.updated_at))
        .collect()
}

/// One frame's lag, and the 10-second window (from the first change) its change was written in.
struct Lag {
    window: usize,
    ms: f64,
}

fn lags(receipts: &[Receipt], written: &HashMap<u64, i64>) -> Vec<Lag> {
    let first = written.values().copied().min().unwrap_or_default();
    let unknown = receipts.iter().filter(|r| !written.contains_key(&r.to)).count();
    assert_eq!(unknown, 0, "every version delivered has its time written");
    receipts
        .iter()
        .map(|r| {
            let at = written[&r.to];
            let received = r.at.duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64() * 1000.0;
            Lag {
                window: ((at - first) / WINDOW_MS) as usize,
                ms: received - at as f64,
            }
        })
        .collect()
}

/// p50/p99/max per window of commit time, then over the run.
fn report(lags: &[Lag]) {
    println!(
        "{:>10} {:>11} {:>10} {:>10} {:>10}",
        "written", "deliveries", "p50 (ms)", "p99 (ms)", "max (ms)"
    );
    let windows = lags.iter().map(|l| l.window + 1).max().unwrap_or(0);
    for window in 0..windows {
        let ms: Vec<f64> = lags.iter().filter(|l| l.window == window).map(|l| l.ms).collect();
        let from = window as i64 * WINDOW_MS / 1000;
        row(&format!("{from}-{} s", from + WINDOW_MS / 1000), ms);
    }
    row("all", lags.iter().map(|l| l.ms).collect());
}

fn row(label: &str, mut ms: Vec<f64>) {
    if ms.is_empty() {
        println!("{label:>10} {:>11}", 0);
        return;
    }
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p / 100.0 * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{label:>10} {:>11} {:>10.1} {:>10.1} {:>10.1}",
        ms.len(),
        rank(50.0),
        rank(99.0),
        ms[ms.len() - 1]
    );
}
