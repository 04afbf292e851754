//! The event source mapping emulator against an embedded dynoxide on a loopback port:
//! ordering and batch size, partial batch failures, bisect and the on-failure sink, retries
//! without bisect, the batching window, record age, starting position, record fields, shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::dynamodb::{EventRecord, StreamViewType};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use statecast::dynamo::{create_tables, TableNames};
use statecast::metrics::{CaptureWriter, Metric, Metrics};
use statecast_local::engine::{loopback_sdk_config, Engine};
use statecast_local::esm::{
    stream_arn, stream_handler, EsmConfig, EsmHandle, EventSourceMapping, FailureReason, StartingPosition,
};

const WAIT: Duration = Duration::from_secs(10);

/// A fresh engine with the platform's tables; writes go to the actors table (streamed).
struct Fixture {
    dynamo: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    actors: String,
    arn: String,
    _engine: Engine,
}

impl Fixture {
    async fn start() -> Fixture {
        let engine = Engine::embedded(None).await.expect("embedded engine starts");
        let sdk = loopback_sdk_config(&engine.endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let tables = TableNames::with_prefix("esm-");
        create_tables(&dynamo, &tables).await.expect("tables are created");
        let arn = stream_arn(&dynamo, &tables.actors).await.expect("actors stream");
        Fixture {
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
            dynamo,
            actors: tables.actors,
            arn,
            _engine: engine,
        }
    }

    async fn put(&self, key: &str, n: usize) {
        self.dynamo
            .put_item()
            .table_name(&self.actors)
            .item("actorKey", AttributeValue::S(key.to_owned()))
            .item("n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .expect("put item");
    }

    async fn put_range(&self, range: std::ops::Range<usize>) {
        for i in range {
            self.put(&key(i), i).await;
        }
    }

    fn start_esm(&self, config: EsmConfig, calls: &Calls, reply: Reply) -> EsmHandle {
        EventSourceMapping::start(self.streams.clone(), self.arn.clone(), config, calls.handler(reply))
    }
}

fn key(i: usize) -> String {
    format!("k{i:04}")
}

fn keys(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(key).collect()
}

fn key_of(record: &EventRecord) -> String {
    match record.change.keys.get("actorKey") {
        Some(serde_dynamo::AttributeValue::S(key)) => key.clone(),
        other => panic!("record without an actorKey: {other:?}"),
    }
}

fn sequence_of(record: &EventRecord) -> String {
    record.change.sequence_number.clone().expect("sequence number")
}

/// Settings that keep the file fast: 5 ms polls, 1 ms retry back-off.
fn fast() -> EsmConfig {
    EsmConfig {
        poll_interval: Duration::from_millis(5),
        retry_base_delay: Duration::from_millis(1),
        ..EsmConfig::default()
    }
}

/// What the test handler answers, given the invocation number and its batch.
enum Answer {
    Ok,
    /// Batch item failures with these identifiers.
    Fail(Vec<String>),
    Err,
    Panic,
    /// Never answers (outlives any function timeout of these tests).
    Hang,
}

type Reply = Box<dyn Fn(usize, &[EventRecord]) -> Answer + Send + Sync>;

/// Every batch the handler was invoked with, in order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<Vec<EventRecord>>>>);

impl Calls {
    fn handler(&self, reply: Reply) -> statecast_local::esm::StreamHandler {
        let calls = self.0.clone();
        let reply = Arc::new(reply);
        stream_handler(move |event: aws_lambda_events::dynamodb::Event| {
            let answer = {
                let mut calls = calls.lock().expect("calls");
                calls.push(event.records.clone());
                reply(calls.len() - 1, &event.records)
            };
            async move {
                match answer {
                    Answer::Ok => Ok(DynamoDbEventResponse::default()),
                    Answer::Fail(ids) => Ok(failures(ids)),
                    Answer::Err => Err("poisoned batch".into()),
                    Answer::Panic => panic!("the test handler panics on purpose"),
                    Answer::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(DynamoDbEventResponse::default())
                    }
                }
            }
        })
    }

    fn batches(&self) -> Vec<Vec<EventRecord>> {
        self.0.lock().expect("calls").clone()
    }

    fn keys(&self) -> Vec<Vec<String>> {
        self.batches().iter().map(|b| b.iter().map(key_of).collect()).collect()
    }
}

fn failures(ids: Vec<String>) -> DynamoDbEventResponse {
    statecast::lambda_events::batch_response(ids)
}

fn always_ok() -> Reply {
    Box::new(|_, _| Answer::Ok)
}

/// Fails every batch containing `poison` with a function error.
fn poisoned(poison: String) -> Reply {
    Box::new(move |_, batch| {
        if batch.iter().any(|r| key_of(r) == poison) {
            Answer::Err
        } else {
            Answer::Ok
        }
    })
}

#[tokio::test]
async fn every_record_is_delivered_once_in_order_in_full_batches() {
    let fx = Fixture::start().await;
    fx.put_range(0..250).await;
    let calls = Calls::default();
    let esm = fx.start_esm(fast(), &calls, always_ok());
    assert!(esm.wait_idle(WAIT).await, "the mapping catches up");

    let batches = calls.batches();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let all: Vec<&EventRecord> = batches.iter().flatten().collect();
    assert_eq!(all.iter().map(|r| key_of(r)).collect::<Vec<_>>(), keys(0..250));
    let sequences: Vec<String> = all.iter().map(|r| sequence_of(r)).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let stats = esm.stats();
    assert_eq!((stats.invocations, stats.records_processed, stats.retries), (3, 250, 0));
    assert!(esm.failures().is_empty());
}

#[tokio::test]
async fn a_batch_item_failure_resumes_exactly_at_the_reported_record() {
    let fx = Fixture::start().await;
    fx.put_range(0..10).await;
    let calls = Calls::default();
    let reply: Reply = Box::new(|call, batch| match call {
        0 => Answer::Fail(vec![sequence_of(&batch[7]), sequence_of(&batch[4])]),
        _ => Answer::Ok,
    });
    let esm = fx.start_esm(fast(), &calls, reply);
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(0..10), keys(4..10)]);
    let stats = esm.stats();
    assert_eq!((stats.retries, stats.records_processed), (1, 10));
    assert!(esm.failures().is_empty());
}

#[tokio::test]
async fn an_unknown_or_empty_item_identifier_fails_the_whole_batch() {
    let fx = Fixture::start().await;
    fx.put_range(0..6).await;
    let calls = Calls::default();
    let reply: Reply = Box::new(|call, _| match call {
        0 => Answer::Fail(vec!["not-in-this-batch".to_owned()]),
        1 => Answer::Fail(vec![String::new()]),
        _ => Answer::Ok,
    });
    let esm = fx.start_esm(fast(), &calls, reply);
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(0..6), keys(0..6), keys(0..6)]);
    assert_eq!(esm.stats().retries, 2);
}

#[tokio::test]
async fn bisect_isolates_a_poison_record_which_alone_goes_to_the_sink() {
    let fx = Fixture::start().await;
    fx.put_range(0..40).await;
    let calls = Calls::default();
    let config = EsmConfig {
        max_retry_attempts: 3,
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, poisoned(key(23)));
    assert!(esm.wait_idle(WAIT).await);

    let failures = esm.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let sunk = &failures[0];
    assert_eq!(sunk.records.iter().map(key_of).collect::<Vec<_>>(), [key(23)]);
    assert_eq!((sunk.record_count, sunk.attempts), (1, 4));
    assert!(matches!(sunk.reason, FailureReason::FunctionError { .. }));
    assert_eq!(sunk.first_sequence_number, sunk.last_sequence_number);

    let batches = calls.keys();
    assert_eq!(
        batches[..2],
        [keys(0..40), keys(0..20)],
        "the failed batch is halved, first half first"
    );
    let alone = batches.iter().filter(|b| **b == [key(23)]).count();
    assert_eq!(alone, 4, "the first attempt plus max_retry_attempts retries");
    let delivered: Vec<String> = batches
        .into_iter()
        .filter(|b| !b.contains(&key(23)))
        .flatten()
        .collect();
    let expected: Vec<String> = keys((0..40).filter(|i| *i != 23));
    assert_eq!(
        delivered, expected,
        "every other record succeeds exactly once, in order"
    );
    let stats = esm.stats();
    assert_eq!(
        (stats.retries, stats.records_failed, stats.records_processed),
        (3, 1, 39)
    );
    assert!(stats.bisections >= 5, "40 records halve down to one: {stats:?}");
}

#[tokio::test]
async fn without_bisect_the_whole_batch_is_retried_then_sunk() {
    let fx = Fixture::start().await;
    fx.put_range(0..10).await;
    let calls = Calls::default();
    let config = EsmConfig {
        batch_size: 5,
        bisect_on_error: false,
        max_retry_attempts: 2,
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, poisoned(key(2)));
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(0..5), keys(0..5), keys(0..5), keys(5..10)]);
    let failures = esm.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].records.iter().map(key_of).collect::<Vec<_>>(), keys(0..5));
    assert_eq!(failures[0].attempts, 3);
    assert_eq!(esm.stats().bisections, 0);
}

#[tokio::test]
async fn item_failures_past_the_retry_limit_sink_the_rest_of_the_batch() {
    let fx = Fixture::start().await;
    fx.put_range(0..5).await;
    let calls = Calls::default();
    let reply: Reply = Box::new(|_, batch| {
        let failed = batch.iter().filter(|r| key_of(r) == key(3)).map(sequence_of).collect();
        Answer::Fail(failed)
    });
    let emf = Arc::new(CaptureWriter::new());
    let config = EsmConfig {
        max_retry_attempts: 1,
        metrics: Metrics::new("fn-fanout", emf.clone()),
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, reply);
    assert!(esm.wait_idle(WAIT).await);

    // The sink counts what it got in one EMF document.
    let documents = emf.documents();
    let [document] = documents.as_slice() else {
        panic!("one document: {documents:?}")
    };
    assert_eq!(document["OnFailureRecords"], 2.0);
    assert_eq!(document["FunctionName"], "fn-fanout");
    assert_eq!(document["reason"], "retries exhausted");
    let declared = &document["_aws"]["CloudWatchMetrics"][0]["Metrics"][0];
    assert_eq!(declared["Name"], Metric::OnFailureRecords.name());
    assert_eq!(declared["Unit"], "Count");

    assert_eq!(calls.keys(), [keys(0..5), keys(3..5)]);
    let failures = esm.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].reason, FailureReason::RetriesExhausted);
    assert_eq!(failures[0].records.iter().map(key_of).collect::<Vec<_>>(), keys(3..5));
    assert_eq!(esm.stats().records_processed, 3);
}

#[tokio::test]
async fn a_panic_or_a_timeout_is_a_function_error_and_is_retried() {
    let fx = Fixture::start().await;
    fx.put_range(0..1).await;
    let calls = Calls::default();
    let reply: Reply = Box::new(|call, _| match call {
        0 => Answer::Panic,
        1 => Answer::Hang,
        _ => Answer::Ok,
    });
    let config = EsmConfig {
        function_timeout: Duration::from_millis(100),
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, reply);
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(0..1), keys(0..1), keys(0..1)]);
    let stats = esm.stats();
    assert_eq!((stats.retries, stats.records_processed), (2, 1));
    assert!(esm.failures().is_empty());
}

#[tokio::test]
async fn the_batching_window_gathers_several_writes_into_one_invocation() {
    let fx = Fixture::start().await;
    let calls = Calls::default();
    let config = EsmConfig {
        batching_window: Duration::from_millis(400),
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, always_ok());
    assert!(esm.wait_idle(WAIT).await);
    for i in 0..5 {
        fx.put(&key(i), i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(0..5)]);
}

#[tokio::test]
async fn records_older_than_the_maximum_age_skip_the_handler() {
    let fx = Fixture::start().await;
    fx.put_range(0..2).await;
    // Creation times have a one-second resolution; 2.2 s is older than 2 s whatever the rounding.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let calls = Calls::default();
    let config = EsmConfig {
        max_record_age: Duration::from_secs(2),
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, always_ok());
    assert!(esm.wait_idle(WAIT).await);
    fx.put(&key(2), 2).await;
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys(), [keys(2..3)]);
    let failures = esm.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].reason, FailureReason::RecordTooOld);
    assert_eq!((failures[0].record_count, failures[0].attempts), (2, 0));
}

#[tokio::test]
async fn a_latest_starting_position_skips_what_is_already_in_the_stream() {
    let fx = Fixture::start().await;
    fx.put_range(0..3).await;
    let calls = Calls::default();
    let config = EsmConfig {
        starting_position: StartingPosition::Latest,
        ..fast()
    };
    let esm = fx.start_esm(config, &calls, always_ok());
    assert!(esm.wait_idle(WAIT).await);
    fx.put_range(3..5).await;
    assert!(esm.wait_idle(WAIT).await);

    assert_eq!(calls.keys().concat(), keys(3..5));
}

#[tokio::test]
async fn records_carry_the_lambda_event_fields() {
    let fx = Fixture::start().await;
    fx.put(&key(0), 1).await;
    fx.put(&key(0), 2).await;
    fx.dynamo
        .delete_item()
        .table_name(&fx.actors)
        .key("actorKey", AttributeValue::S(key(0)))
        .send()
        .await
        .expect("delete item");
    let calls = Calls::default();
    let esm = fx.start_esm(fast(), &calls, always_ok());
    assert!(esm.wait_idle(WAIT).await);

    let records = calls.batches().concat();
    let names: Vec<&str> = records.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    let images: Vec<(usize, usize)> = records
        .iter()
        .map(|r| (r.change.old_image.len(), r.change.new_image.len()))
        .collect();
    assert_eq!(images, [(0, 2), (2, 2), (2, 0)]);
    let minute_ago = SystemTime::now() - Duration::from_secs(60);
    for record in &records {
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(record.event_source_arn.as_deref(), Some(fx.arn.as_str()));
        assert_eq!(record.change.stream_view_type, Some(StreamViewType::NewAndOldImages));
        assert!(!record.event_id.is_empty() && record.user_identity.is_none());
        let created = SystemTime::from(record.change.approximate_creation_date_time);
        assert!(created > minute_ago, "creation time filled: {created:?}");
    }
    let new_n: HashMap<&str, Option<&serde_dynamo::AttributeValue>> = records
        .iter()
        .map(|r| (r.event_name.as_str(), r.change.new_image.get("n")))
        .collect();
    assert_eq!(new_n["MODIFY"], Some(&serde_dynamo::AttributeValue::N("2".to_owned())));
}

#[tokio::test]
async fn stream_errors_are_retried_without_panicking() {
    let fx = Fixture::start().await;
    let missing = fx.arn.replace(&fx.actors, "esm-missing");
    let calls = Calls::default();
    let esm = EventSourceMapping::start(fx.streams.clone(), missing, fast(), calls.handler(always_ok()));
    assert!(
        !esm.wait_idle(Duration::from_millis(300)).await,
        "never idle without shards"
    );
    assert!(esm.is_running());
    tokio::time::timeout(WAIT, esm.shutdown())
        .await
        .expect("shutdown completes");
    assert!(calls.batches().is_empty());
}

#[tokio::test]
async fn shutdown_stops_the_task() {
    let fx = Fixture::start().await;
    let calls = Calls::default();
    let esm = fx.start_esm(fast(), &calls, always_ok());
    fx.put_range(0..3).await;
    assert!(esm.wait_idle(WAIT).await);
    assert!(esm.is_running());

    tokio::time::timeout(WAIT, esm.shutdown())
        .await
        .expect("shutdown completes");
    fx.put_range(3..6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.keys().concat(), keys(0..3), "nothing is read after shutdown");
}
