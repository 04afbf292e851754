//! The fan-out handler path on a recorded 100-record stream batch, from the payload's JSON bytes
//! as Lambda delivers them: the runtime's deserialization into `aws_lambda_events` records,
//! each image decoded with `serde_dynamo` (100 MODIFY records, old and new images, ~2.5 KB todo
//! states, one item edited), then `FanoutService` diffs and posts to each actor's subscriber.
//! Subscribers come from an in-memory store. `fanout/…` posts to a `RecordingSender` (neither
//! DynamoDB nor `@connections` in the loop); `fanout_with_10ms_posts/…` waits 10 ms per post,
//! as a `PostToConnection` from Lambda does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::dynamodb::{Event, EventRecord, StreamRecord, StreamViewType};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Map, Value};
use statecast::delta::serialized_len;
use statecast::ids::{ActorKey, ConnectionId, Epoch, Version};
use statecast::ports::{ConnectionStore, Held, SubscriberCursor, SubscriberPage, SubscriptionStore};
use statecast::records::{ActorRecord, ConnectionRecord, MemberRecord, SubscriptionRecord};
use statecast::service::{DisconnectService, FanoutOutcome, FanoutService, RateLimit, Settings};
use statecast::stream_events::actor_stream_item;
use statecast::testing::RecordingSender;
use std::hint::black_box;

/// The allocator the Lambda binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACTORS: usize = 10;
const VERSIONS: u64 = 10;
const RECORDS: usize = ACTORS * VERSIONS as usize;
/// Roughly the serialized size of each todo state.
const STATE_BYTES: usize = 2_500;
const EPOCH: Epoch = Epoch(1_795_435_210_000);

/// Subscribers held in memory: one page per actor. Nothing else is ever called by a fan-out
/// in which no subscriber is gone.
struct InMemorySubscriptions(HashMap<ActorKey, Vec<ConnectionId>>);

#[async_trait]
impl SubscriptionStore for InMemorySubscriptions {
    async fn put_subscription(&self, _: &SubscriptionRecord) -> statecast::Result<Option<MemberRecord>> {
        unreachable!("the fan-out never subscribes")
    }
    async fn delete_subscription(&self, _: &ActorKey, _: &ConnectionId) -> statecast::Result<Option<MemberRecord>> {
        unreachable!("no subscriber is gone in this batch")
    }
    async fn update_presence(
        &self,
        _: &ActorKey,
        _: &ConnectionId,
        _: &str,
    ) -> statecast::Result<Option<MemberRecord>> {
        unreachable!("the fan-out never changes presence")
    }
    async fn subscribers(
        &self,
        actor: &ActorKey,
        from: Option<&SubscriberCursor>,
    ) -> statecast::Result<SubscriberPage> {
        assert!(from.is_none(), "every actor's subscribers fit one page");
        Ok(SubscriberPage {
            connections: self.0.get(actor).cloned().unwrap_or_default(),
            shards: 1,
            ..SubscriberPage::default()
        })
    }
    async fn spread(&self, _: &ActorKey, _: u32) -> statecast::Result<()> {
        unreachable!("no actor has that many subscribers here")
    }
    async fn subscriptions_of(&self, _: &ConnectionId) -> statecast::Result<Vec<Held>> {
        unreachable!("no subscriber is gone in this batch")
    }
    async fn delete_subscriptions(&self, _: &ConnectionId, _: &[Held]) -> statecast::Result<()> {
        unreachable!("no subscriber is gone in this batch")
    }
}

#[async_trait]
impl ConnectionStore for InMemorySubscriptions {
    async fn put_connection(&self, _: &ConnectionRecord) -> statecast::Result<()> {
        unreachable!("the fan-out never connects")
    }
    async fn get_connection(&self, _: &ConnectionId) -> statecast::Result<Option<ConnectionRecord>> {
        unreachable!("the fan-out never reads connections")
    }
    async fn delete_connection(&self, _: &ConnectionId) -> statecast::Result<()> {
        unreachable!("no subscriber is gone in this batch")
    }
    async fn admit(&self, _: &ConnectionId, _: &RateLimit, _: i64) -> statecast::Result<ConnectionRecord> {
        unreachable!("the fan-out never broadcasts")
    }
}

fn actor_key(actor: usize) -> ActorKey {
    ActorKey::parse(&format!("bench/todo/list-{actor}")).expect("actor key")
}

/// A todo state of about [`STATE_BYTES`] bytes with item `done` flags toggled `toggles` times.
fn todo_state(toggles: u64) -> Value {
    let mut items = Map::new();
    let mut i = 0;
    while serialized_len(&items) < STATE_BYTES {
        i += 1;
        items.insert(
            i.to_string(),
            json!({"title": format!("buy item {i} at the shop"), "done": false}),
        );
    }
    for t in 0..toggles {
        let id = (t * 7 % i + 1).to_string();
        let done = &mut items[&id]["done"];
        *done = json!(!done.as_bool().expect("done"));
    }
    json!({"items": items, "nextId": i})
}

fn image(actor: usize, version: u64) -> serde_dynamo::Item {
    let record = ActorRecord {
        actor_key: actor_key(actor),
        state: todo_state(version),
        version: Version(version),
        epoch: EPOCH,
        updated_at: EPOCH.0 as i64 + version as i64,
        log: Vec::new(),
        trace: None,
    };
    serde_dynamo::to_item(&record).expect("actor record item")
}

/// One MODIFY record as the actors stream delivers it to the Lambda.
fn modify_record(sequence: u64, actor: usize, version: u64) -> EventRecord {
    let mut change = StreamRecord::default();
    change.keys = serde_dynamo::to_item(json!({"actorKey": actor_key(actor).to_string()})).expect("keys");
    change.old_image = image(actor, version - 1);
    change.new_image = image(actor, version);
    change.sequence_number = Some(format!(
        "{:021}",
        111_000_000_000_000_000_000u128 + u128::from(sequence)
    ));
    change.size_bytes = 2 * STATE_BYTES as i64;
    change.stream_view_type = Some(StreamViewType::NewAndOldImages);
    let mut record = EventRecord::default();
    record.aws_region = "us-east-1".into();
    record.event_id = format!("{sequence:032x}");
    record.event_name = "MODIFY".into();
    record.event_source = Some("aws:dynamodb".into());
    record.event_version = Some("1.1".into());
    record.event_source_arn =
        Some("arn:aws:dynamodb:us-east-1:123456789012:table/statecast-actors/stream/2026-11-23T00:00:00.000".into());
    record.change = change;
    record
}

/// 10 actors × versions 2..=11, interleaved in stream order as concurrent writers produce them.
fn batch() -> Vec<EventRecord> {
    (0..VERSIONS)
        .flat_map(|v| (0..ACTORS).map(move |a| (a, v + 2)))
        .enumerate()
        .map(|(sequence, (actor, version))| modify_record(sequence as u64, actor, version))
        .collect()
}

/// The batch's payload as Lambda hands it to the runtime.
fn payload(records: Vec<EventRecord>) -> Vec<u8> {
    let mut event = Event::default();
    event.records = records;
    serde_json::to_vec(&event).expect("event JSON")
}

/// What the Lambda runtime and handler do with a payload.
async fn handle(service: &FanoutService, payload: &[u8]) -> FanoutOutcome {
    let event: Event = serde_json::from_slice(payload).expect("stream event");
    service
        .fan_out(event.records.into_iter().map(actor_stream_item).collect())
        .await
}

/// Realistic `@connections` latency: PostToConnection from a Lambda in the API's region.
const POST_LATENCY: Duration = Duration::from_millis(10);

/// Posts that take [`POST_LATENCY`] each, as on AWS.
struct LatentSender;

#[async_trait]
impl statecast::ports::ConnectionSender for LatentSender {
    async fn send(&self, _: &ConnectionId, frame: &str) -> statecast::Result<()> {
        black_box(frame);
        tokio::time::sleep(POST_LATENCY).await;
        Ok(())
    }
}

fn fan_out_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let subscribers: HashMap<ActorKey, Vec<ConnectionId>> = (0..ACTORS)
        .map(|a| (actor_key(a), vec![ConnectionId::new(format!("conn-{a}")).expect("id")]))
        .collect();
    let store = Arc::new(InMemorySubscriptions(subscribers));
    let registry = Arc::new(statecast::app::application().expect("valid").actors().clone());
    let sender = Arc::new(RecordingSender::new());
    let service = FanoutService::new(
        store.clone(),
        sender.clone(),
        DisconnectService::new(store.clone(), store.clone(), None, 1),
        registry.clone(),
        // One frame per record, as before coalescing, so the figures compare across runs.
        Settings {
            coalesce: false,
            ..Settings::default()
        },
    );
    let records = batch();
    assert_eq!(records.len(), RECORDS);
    let state_len = serialized_len(&todo_state(0));
    assert!(
        (2_300..2_800).contains(&state_len),
        "states are ~2.5 KB, got {state_len}"
    );

    let payload = payload(records);
    let outcome = runtime.block_on(handle(&service, &payload));
    assert_eq!(
        outcome,
        FanoutOutcome {
            failed: vec![],
            delivered: RECORDS,
            ..FanoutOutcome::default()
        }
    );
    let sent = sender.sent();
    assert_eq!(sent.len(), RECORDS, "one post per record and subscriber");
    for (_, frame) in &sent {
        let frame: Value = serde_json::from_str(frame).expect("frame is JSON");
        assert_eq!(frame["type"], "delta", "a single-item edit travels as a delta: {frame}");
        assert_eq!(frame["patch"].as_array().map(Vec::len), Some(1));
    }
    sender.clear();

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode_and_fan_out_100_modify_records", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let outcome = runtime.block_on(handle(&service, black_box(&payload)));
                total += start.elapsed();
                assert_eq!(outcome.delivered, RECORDS);
                // Keep the recording sender from growing across iterations (not timed).
                sender.clear();
            }
            total
        })
    });
    group.finish();

    let latent = FanoutService::new(
        store.clone(),
        Arc::new(LatentSender),
        DisconnectService::new(store.clone(), store.clone(), None, 1),
        registry.clone(),
        // One frame per record, as before coalescing, so the figures compare across runs.
        Settings {
            coalesce: false,
            ..Settings::default()
        },
    );
    let mut group = c.benchmark_group("fanout_with_10ms_posts");
    group.sample_size(20);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode_and_fan_out_100_modify_records", |b| {
        b.iter(|| runtime.block_on(handle(&latent, black_box(&payload))))
    });
    group.finish();
}

criterion_group!(benches, fan_out_batch);
criterion_main!(benches);
