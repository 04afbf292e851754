//! The load tool end to end, small: 20 subscribers × 10 calls (or broadcasts) against the
//! in-process ceiling and against an in-process local stack, with zero errors and plausible figures.

use std::time::Duration;

use statecast_loadtest::{target, DriverOptions, MessageKind, Report, Target};

fn small() -> DriverOptions {
    DriverOptions {
        subscribers: 20,
        calls: 10,
        connect_concurrency: 4,
        settle: Duration::from_millis(50),
        ..DriverOptions::default()
    }
}

fn small_broadcasts() -> DriverOptions {
    DriverOptions {
        message: MessageKind::Broadcast,
        ..small()
    }
}

/// A clean run: every figure present, ordered and finite, and nothing lost or repeated.
fn assert_sane(report: &Report) {
    assert_eq!(report.errors, 0, "{}: {:?}", report.target, report.error_messages);
    assert_eq!((report.subscribers, report.calls), (20, 10));
    assert!(
        report.connect_p50_ms > 0.0 && report.connect_p50_ms <= report.connect_p99_ms,
        "{report:?}"
    );
    assert!(report.p50_ms > 0.0, "{report:?}");
    assert!(
        0.0 < report.first_p50_ms && report.first_p50_ms <= report.p50_ms,
        "the first delivery comes no later than the last: {report:?}"
    );
    assert!(
        report.reply_p50_ms > 0.0,
        "every message got its reply timed: {report:?}"
    );
    assert!(report.p50_ms <= report.p90_ms && report.p90_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
    assert!(report.max_ms < 10_000.0, "{report:?}");
    assert!(
        report.deliveries_per_sec > 0.0 && report.deliveries_per_sec.is_finite(),
        "{report:?}"
    );
}

/// The raw ceiling serves the driver's protocol and delivers every version once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceiling_delivers_every_change_to_every_subscriber() {
    let report = target::run(&Target::Ceiling, &small()).await.expect("the ceiling runs");
    assert_eq!(report.target, "ceiling");
    assert_sane(&report);
}

/// Local mode, started in-process, delivers every version once, in order, to every subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stack_delivers_every_change_to_every_subscriber() {
    let report = target::run(&Target::Ours { url: None }, &small())
        .await
        .expect("local mode runs");
    assert_eq!(report.target, "ours");
    assert_sane(&report);
}

/// The ceiling also answers broadcasts: every tick reaches every subscriber once, in order,
/// and each `sent` names all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceiling_delivers_every_broadcast_to_every_subscriber() {
    let report = target::run(&Target::Ceiling, &small_broadcasts())
        .await
        .expect("the ceiling runs");
    assert_eq!(
        (report.target, report.message, report.reply),
        ("ceiling", "broadcast", "sent")
    );
    assert_sane(&report);
}

/// Local mode posts every broadcast to every subscriber (the sender too) exactly once, and
/// answers each with `sent` naming all of them as recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stack_delivers_every_broadcast_to_every_subscriber() {
    let report = target::run(&Target::Ours { url: None }, &small_broadcasts())
        .await
        .expect("local mode runs");
    assert_eq!(
        (report.target, report.message, report.reply),
        ("ours", "broadcast", "sent")
    );
    assert_sane(&report);
}
