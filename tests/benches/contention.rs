//! One hot actor under concurrent writers, on the embedded engine: how many calls answer
//! `conflict` and how many calls per second the actor takes. Writers share one `$default`
//! service (one process: local mode, where calls to one actor take turns) or each get their
//! own (one Lambda container each, where only the version check and the retry budget decide).
//!
//! `cargo bench -p statecast-tests --bench contention [-- CALLS_PER_WRITER]`

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use statecast::ids::ConnectionId;
use statecast::protocol::{ErrorCode, ServerMessage};
use statecast::service::MessageService;
use statecast_tests::Harness;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `writers` × `calls` increments of one counter; returns conflicts, calls/s, p50, p99 (ms).
async fn run(h: &Harness, actor: &str, writers: usize, containers: usize, calls: usize) -> (usize, f64, f64, f64) {
    let services: Vec<Arc<MessageService>> = (0..containers).map(|_| Arc::new(h.message_service())).collect();
    let mut connections: Vec<ConnectionId> = Vec::new();
    for i in 0..writers {
        connections.push(h.connect(&format!("{actor}-w{i}"), None).await);
    }
    let frame = json!({"action":"call","actor":actor,"method":"increment"}).to_string();
    let start = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, connection)| {
            let service = services[i % containers].clone();
            let frame = frame.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut conflicts = 0;
                for _ in 0..calls {
                    let sent = Instant::now();
                    match service.handle(&connection, &frame, "bench").await {
                        ServerMessage::Result { .. } => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                        ServerMessage::Error {
                            code: ErrorCode::Conflict,
                            ..
                        } => conflicts += 1,
                        other => panic!("unexpected reply {other:?}"),
                    }
                }
                (latencies, conflicts)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (l, c) = task.await.expect("writer");
        latencies.extend(l);
        conflicts += c;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let rate = latencies.len() as f64 / elapsed;
    (
        conflicts,
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    let h = Harness::start().await;
    println!(
        "one counter, {calls} increments per writer, call retry budget {:?}",
        h.settings.call_retry_budget
    );
    println!(
        "{:>8} {:>11} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "writers", "containers", "calls", "conflicts", "calls/s", "p50 ms", "p99 ms"
    );
    for writers in [16, 64] {
        for containers in [1, writers] {
            let actor = format!("counter/hot-{writers}-{containers}");
            let (conflicts, rate, p50, p99) = run(&h, &actor, writers, containers, calls).await;
            println!(
                "{writers:>8} {containers:>11} {:>7} {conflicts:>10} {rate:>9.0} {p50:>9.1} {p99:>9.1}",
                writers * calls
            );
        }
    }
}
