//! Each function's CloudWatch Embedded Metric Format output for one operation, captured through
//! the injectable writer and parsed as CloudWatch would: the declared names, units and
//! dimensions, and the values the operation should have produced.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use statecast::application::Stores;
use statecast::error::{Error, Result};
use statecast::ids::{ActorKey, ConnectionId, TenantId};
use statecast::metrics::{CaptureWriter, Metric, Metrics, NAMESPACE};
use statecast::ports::{ActorStore, ActorWrite, ConnectionSender};
use statecast::records::{ActorRecord, CallRecord};
use statecast::service::PostLimits;
use statecast::testing::RecordingSender;
use statecast::workflow::WorkflowSettings;
use statecast_tests::fixtures::{lambda_event, raw, route_reply, ws_event};
use statecast_tests::{connection, Harness, DEV_TENANT};

/// One metric as a document declares it.
#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    unit: String,
    values: Vec<f64>,
    dimensions: BTreeMap<String, String>,
}

/// Parses one EMF document the way CloudWatch does; panics on anything it would reject.
fn parse(document: &Value) -> BTreeMap<String, Recorded> {
    let aws = &document["_aws"];
    assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "{document}");
    let mut metrics = BTreeMap::new();
    for directive in aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics") {
        assert_eq!(directive["Namespace"], NAMESPACE);
        let sets = directive["Dimensions"].as_array().expect("Dimensions");
        assert_eq!(sets.len(), 1, "{directive}");
        let dimensions: BTreeMap<String, String> = sets[0]
            .as_array()
            .expect("a dimension set")
            .iter()
            .map(|d| {
                let name = d.as_str().expect("dimension name");
                let value = document[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("dimension {name} has no value"));
                (name.to_owned(), value.to_owned())
            })
            .collect();
        for definition in directive["Metrics"].as_array().expect("Metrics") {
            let name = definition["Name"].as_str().expect("Name");
            let values = match &document[name] {
                Value::Number(n) => vec![n.as_f64().expect("number")],
                Value::Array(a) => a.iter().map(|v| v.as_f64().expect("number")).collect(),
                other => panic!("{name} has no numeric value: {other}"),
            };
            let recorded = Recorded {
                unit: definition["Unit"].as_str().expect("Unit").to_owned(),
                values,
                dimensions: dimensions.clone(),
            };
            assert!(
                metrics.insert(name.to_owned(), recorded).is_none(),
                "{name} declared twice"
            );
        }
    }
    metrics
}

/// Every document `capture` holds, parsed, in order.
fn recorded(capture: &CaptureWriter) -> Vec<BTreeMap<String, Recorded>> {
    let lines = capture.lines();
    let documents = capture.documents();
    assert_eq!(
        documents.len(),
        lines.len(),
        "every line is one JSON document: {lines:?}"
    );
    documents.iter().map(parse).collect()
}

/// The only document with `metric`, and the metric in it.
fn only(docs: &[BTreeMap<String, Recorded>], metric: Metric) -> (BTreeMap<String, Recorded>, Recorded) {
    let with: Vec<_> = docs.iter().filter(|d| d.contains_key(metric.name())).collect();
    let [doc] = with.as_slice() else {
        panic!(
            "expected one document with {}, found {}: {docs:?}",
            metric.name(),
            with.len()
        )
    };
    let found = doc[metric.name()].clone();
    assert_eq!(found.unit, metric.unit().as_str(), "{}", metric.name());
    ((*doc).clone(), found)
}

fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn count(value: f64) -> Vec<f64> {
    vec![value]
}

/// A harness whose services write metrics of `function` into the returned capture.
async fn metered(function: &str) -> (Harness, Arc<CaptureWriter>) {
    let mut h = Harness::start().await;
    let capture = Arc::new(CaptureWriter::new());
    h.settings.metrics = Metrics::new(function, capture.clone());
    (h, capture)
}

#[tokio::test]
async fn connect_and_disconnect_count_connections() {
    let (h, capture) = metered("fn-connect").await;
    let response = statecast_connect::handler(&h.connect_service(), ws_event("ws-connect", "c-1", None, None))
        .await
        .expect("connect");
    assert_eq!(response.status_code, 200);
    let docs = recorded(&capture);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let (_, opened) = only(&docs, Metric::ConnectionsOpened);
    assert_eq!(opened.values, count(1.0));
    assert_eq!(opened.dimensions, dims(&[("FunctionName", "fn-connect")]));
    let document = &capture.documents()[0];
    assert_eq!(document["requestId"], raw("ws-connect")["requestContext"]["requestId"]);

    capture.clear();
    let refused = ws_event("ws-connect", "c-2", None, Some(json!({"tenant": "not/valid"})));
    let response = statecast_connect::handler(&h.connect_service(), refused)
        .await
        .expect("connect");
    assert_eq!(response.status_code, 400);
    assert!(capture.lines().is_empty(), "a refused connection opens nothing");

    let response = statecast_disconnect::handler(&h.disconnect_service(), ws_event("ws-disconnect", "c-1", None, None))
        .await
        .expect("disconnect");
    assert_eq!(response.status_code, 200);
    let docs = recorded(&capture);
    let (_, closed) = only(&docs, Metric::ConnectionsClosed);
    assert_eq!(closed.values, count(1.0));
    assert_eq!(closed.dimensions, dims(&[("FunctionName", "fn-connect")]));
}

/// Sends `body` from connection `id` through the `$default` handler; returns the reply.
async fn send(h: &Harness, id: &str, body: Value) -> Value {
    let event = ws_event("ws-message", id, Some(&body.to_string()), None);
    route_reply(statecast_default::handler(&h.message_service(), event).await)
}

async fn call(h: &Harness, id: &str, actor: &str, method: &str) -> Value {
    send(
        h,
        id,
        json!({"action": "call", "id": 1, "actor": actor, "method": method, "args": {}}),
    )
    .await
}

#[tokio::test]
async fn a_call_records_its_outcome_and_latency() {
    let (h, capture) = metered("fn-default").await;
    h.connect("caller", Some("acme")).await;
    capture.clear();
    let reply = call(&h, "caller", "counter/metered", "increment").await;
    assert_eq!(reply["type"], "result", "{reply}");
    let docs = recorded(&capture);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let (_, calls) = only(&docs, Metric::Calls);
    assert_eq!(calls.values, count(1.0));
    assert_eq!(
        calls.dimensions,
        dims(&[("FunctionName", "fn-default"), ("Outcome", "ok")])
    );
    let (_, latency) = only(&docs, Metric::CallLatency);
    assert_eq!(latency.dimensions, calls.dimensions);
    assert!(latency.values[0] > 0.0 && latency.values[0] < 30_000.0, "{latency:?}");
    assert_eq!(
        capture.documents()[0]["requestId"],
        raw("ws-message")["requestContext"]["requestId"]
    );

    capture.clear();
    let reply = call(&h, "caller", "counter/metered", "no-such-method").await;
    assert_eq!(reply["type"], "error", "{reply}");
    let code = reply["code"].as_str().expect("code");
    let (_, calls) = only(&recorded(&capture), Metric::Calls);
    assert_eq!(
        calls.dimensions["Outcome"], code,
        "a failed call is counted under its code"
    );

    capture.clear();
    let ping = send(&h, "caller", json!({"action": "ping", "id": 9})).await;
    assert_eq!(ping["type"], "pong");
    assert!(capture.lines().is_empty(), "only calls are counted as calls");
}

/// An actor store whose first `conflicts` writes lose to another writer.
struct Contended {
    inner: Arc<dyn ActorStore>,
    conflicts: AtomicUsize,
}

#[async_trait]
impl ActorStore for Contended {
    async fn load(&self, key: &ActorKey) -> Result<Option<ActorRecord>> {
        self.inner.load(key).await
    }
    async fn recorded_call(&self, call_key: &str) -> Result<Option<CallRecord>> {
        self.inner.recorded_call(call_key).await
    }
    async fn write(&self, write: ActorWrite) -> Result<()> {
        let lost = self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        match lost {
            true => Err(Error::VersionConflict(write.key.to_string())),
            false => self.inner.write(write).await,
        }
    }
}

#[tokio::test]
async fn each_version_conflict_is_counted() {
    let (h, capture) = metered("fn-default").await;
    h.connect("caller", Some("acme")).await;
    let stores = Stores {
        actors: Arc::new(Contended {
            inner: h.store.clone(),
            conflicts: AtomicUsize::new(2),
        }),
        ..Stores::all(h.store.clone())
    };
    let service =
        statecast::application::Services::new(h.app.clone(), stores, h.settings.clone(), WorkflowSettings::default())
            .message();
    capture.clear();
    let body = json!({"action": "call", "id": 1, "actor": "counter/contended", "method": "increment", "args": {}});
    let reply = route_reply(
        statecast_default::handler(
            &service,
            ws_event("ws-message", "caller", Some(&body.to_string()), None),
        )
        .await,
    );
    assert_eq!(reply["type"], "result", "two lost writes are retried: {reply}");
    let docs = recorded(&capture);
    let conflicts: Vec<f64> = docs
        .iter()
        .filter_map(|d| d.get(Metric::Conflicts.name()))
        .inspect(|r| assert_eq!(r.dimensions, dims(&[("FunctionName", "fn-default")])))
        .flat_map(|r| r.values.clone())
        .collect();
    assert_eq!(conflicts, vec![1.0, 1.0]);
    let (_, calls) = only(&docs, Metric::Calls);
    assert_eq!(calls.dimensions["Outcome"], "ok");
}

/// Posts to one connection are throttled (as API Gateway's 429 beyond the SDK's retries).
struct ThrottleOne {
    inner: RecordingSender,
    throttled: ConnectionId,
}

#[async_trait]
impl ConnectionSender for ThrottleOne {
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()> {
        if to == &self.throttled {
            return Err(Error::Throttled {
                operation: "PostToConnection",
                source: "429".into(),
            });
        }
        self.inner.send(to, frame).await
    }
}

#[tokio::test]
async fn a_fanout_batch_records_posts_lag_size_and_duration() {
    let (h, capture) = metered("fn-fanout").await;
    let tenant = TenantId::new(DEV_TENANT).expect("tenant");
    let key = ActorKey::new(tenant, "counter", "watched").expect("key");
    for id in ["reader", "gone", "throttled"] {
        h.connect(id, None).await;
        let reply = send(
            &h,
            id,
            json!({"action": "subscribe", "id": 1, "actor": "counter/watched"}),
        )
        .await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    let mut stream = h.actor_stream().await;
    let reply = call(&h, "reader", "counter/watched", "increment").await;
    assert_eq!(reply["type"], "result", "{reply}");
    let event = stream.next_event().await;
    assert_eq!(event.records.len(), 1);
    let recording = RecordingSender::new();
    recording.mark_gone(&connection("gone"));
    let sender = Arc::new(ThrottleOne {
        inner: recording,
        throttled: connection("throttled"),
    });
    let fanout = h.fanout_service_with(h.store.clone(), sender.clone());
    capture.clear();
    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("fan-out");
    assert!(
        response.batch_item_failures.is_empty(),
        "a subscriber throttled on every try is given up alone; the batch does not fail"
    );
    assert_eq!(sender.inner.frames_to(&connection("reader")).len(), 1);

    let docs = recorded(&capture);
    assert_eq!(
        docs.len(),
        2,
        "the batch's document and the gone connection's removal: {docs:?}"
    );
    let (_, closed) = only(&docs, Metric::ConnectionsClosed);
    assert_eq!(closed.values, count(1.0), "the gone connection was removed");
    let (doc, _) = only(&docs, Metric::BatchSize);
    let function = dims(&[("FunctionName", "fn-fanout")]);
    for (metric, expected) in [
        (Metric::BatchSize, 1.0),
        (Metric::Deliveries, 1.0),
        (Metric::GoneConnections, 1.0),
        // Tried (and throttled) once per attempt.
        (Metric::ThrottledPosts, f64::from(PostLimits::default().attempts)),
    ] {
        let found = &doc[metric.name()];
        assert_eq!(found.values, count(expected), "{}", metric.name());
        assert_eq!(found.unit, "Count", "{}", metric.name());
        assert_eq!(found.dimensions, function, "{}", metric.name());
    }
    for metric in [Metric::FanoutLag, Metric::BatchDuration] {
        let found = &doc[metric.name()];
        assert_eq!(found.unit, "Milliseconds", "{}", metric.name());
        assert_eq!(found.values.len(), 1, "{}", metric.name());
        assert!(
            (0.0..60_000.0).contains(&found.values[0]),
            "{}: {:?}",
            metric.name(),
            found.values
        );
    }
    assert!(h.store.load(&key).await.expect("load").is_some());
}

#[tokio::test]
async fn workflow_steps_record_their_outcome_and_duration_and_batches_their_size() {
    let (h, capture) = metered("fn-workflow").await;
    let settings = WorkflowSettings {
        metrics: h.settings.metrics.clone(),
        ..WorkflowSettings::default()
    };
    let services = h.services_with(h.app.clone(), h.settings.clone(), settings);
    let service = services.workflow();
    let tenant = TenantId::new(DEV_TENANT).expect("tenant");
    let mut stream = h.workflow_stream().await;
    let input = json!({"sku": "A-1", "quantity": 2, "amount": 40});
    let started = service.start(&tenant, "order", &input, None).await.expect("start");
    let mut batches = 0;
    loop {
        let instance = service
            .instance_of(&tenant, &started.workflow_id)
            .await
            .expect("instance");
        if instance.finished_at.is_some() {
            assert_eq!(instance.status.as_str(), "succeeded");
            break;
        }
        let event = stream.next_event().await;
        assert!(!event.records.is_empty(), "a running instance has records to process");
        let response = statecast_workflow::stream_handler(&service, event).await;
        assert!(response.batch_item_failures.is_empty());
        batches += 1;
        assert!(batches < 50, "the order workflow finishes");
    }
    let docs = recorded(&capture);
    let steps: Vec<&BTreeMap<String, Recorded>> = docs
        .iter()
        .filter(|d| d.contains_key(Metric::WorkflowSteps.name()))
        .collect();
    assert_eq!(steps.len(), 3, "reserve, charge, ship: {docs:?}");
    for doc in steps {
        let count = &doc[Metric::WorkflowSteps.name()];
        assert_eq!(count.values, vec![1.0]);
        assert_eq!(
            count.dimensions,
            dims(&[("FunctionName", "fn-workflow"), ("Outcome", "succeeded")])
        );
        let duration = &doc[Metric::StepDuration.name()];
        assert_eq!(duration.unit, "Milliseconds");
        assert_eq!(duration.dimensions, count.dimensions);
        assert!((0.0..10_000.0).contains(&duration.values[0]), "{duration:?}");
    }
    let sizes: Vec<f64> = docs
        .iter()
        .filter_map(|d| d.get(Metric::BatchSize.name()))
        .map(|r| r.values[0])
        .collect();
    assert_eq!(sizes.len(), batches, "one batch document per invocation");
    assert!(sizes.iter().all(|&s| s >= 1.0));
    assert!(docs
        .iter()
        .filter_map(|d| d.get(Metric::BatchDuration.name()))
        .all(|r| r.unit == "Milliseconds" && r.values[0] >= 0.0));
}

/// The README's table lists every metric with its unit and dimensions, and nothing else.
#[test]
fn the_readme_lists_every_metric_with_its_unit_and_dimensions() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README");
    let rows: BTreeMap<String, (String, String)> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let unit = cells.get(2)?;
            let dimensions = cells.get(3)?;
            matches!(*unit, "Count" | "Milliseconds")
                .then(|| (name.to_owned(), ((*unit).to_owned(), (*dimensions).to_owned())))
        })
        .collect();
    let expected: BTreeMap<String, (String, String)> = Metric::ALL
        .iter()
        .map(|m| {
            let dimensions = match m.by_outcome() {
                true => "FunctionName, Outcome",
                false => "FunctionName",
            };
            (
                m.name().to_owned(),
                (m.unit().as_str().to_owned(), dimensions.to_owned()),
            )
        })
        .collect();
    assert_eq!(rows, expected);
}

/// The page worker records what a page batch posted, like the fan-out, under its own name.
#[tokio::test]
async fn a_page_batch_records_its_posts_size_and_duration() {
    use statecast::ports::SubscriptionStore;
    use statecast_local::sqs_record::{record, Received};
    use statecast_tests::pages::CapturedPages;

    let (h, capture) = metered("fn-pages").await;
    let key = ActorKey::new(TenantId::new(DEV_TENANT).expect("tenant"), "counter", "paged").expect("key");
    h.store.spread(&key, 2).await.expect("spread");
    for id in ["p-reader", "p-gone", "p-other"] {
        h.connect(id, None).await;
        let reply = send(
            &h,
            id,
            json!({"action": "subscribe", "id": 1, "actor": "counter/paged"}),
        )
        .await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    let mut stream = h.actor_stream().await;
    let reply = call(&h, "p-reader", "counter/paged", "increment").await;
    assert_eq!(reply["type"], "result", "{reply}");
    let event = stream.next_event().await;
    let sender = Arc::new(RecordingSender::new());
    sender.mark_gone(&connection("p-gone"));
    let queue = Arc::new(CapturedPages::default());
    let fanout = h
        .fanout_service_with(h.store.clone(), sender.clone())
        .with_pages(queue.clone());
    statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("fan-out");
    let pages = queue.take();
    assert_eq!(pages.len(), 2, "one page per shard");
    capture.clear();

    let records: Vec<Value> = pages
        .iter()
        .enumerate()
        .map(|(i, page)| {
            record(&Received {
                queue: "pages.fifo",
                id: &format!("m-{i}"),
                body: &page.body,
                sent_at: 0,
                receive_count: 1,
                fifo: Some((&page.group, &page.dedup)),
            })
        })
        .collect();
    let batch: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    let worker = h.fanout_service_with(h.store.clone(), sender.clone());
    let response = statecast_fanout_pages::handler(&worker, lambda_event(batch))
        .await
        .expect("pages");
    assert!(response.batch_item_failures.is_empty());
    let docs = recorded(&capture);
    let (_, closed) = only(&docs, Metric::ConnectionsClosed);
    assert_eq!(closed.values, count(1.0), "the gone connection was removed");
    let (doc, _) = only(&docs, Metric::BatchSize);
    let function = dims(&[("FunctionName", "fn-pages")]);
    for (metric, expected) in [
        (Metric::BatchSize, 2.0),
        (Metric::Deliveries, 2.0),
        (Metric::GoneConnections, 1.0),
        (Metric::ThrottledPosts, 0.0),
    ] {
        let found = &doc[metric.name()];
        assert_eq!(found.values, count(expected), "{}", metric.name());
        assert_eq!(found.dimensions, function, "{}", metric.name());
    }
    assert_eq!(doc[Metric::BatchDuration.name()].unit, "Milliseconds");
}
