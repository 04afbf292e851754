//! The event source mapping's position kept across restarts: a mapping started again with the
//! same position store continues after the last record the previous one processed, and its
//! position is what the stream trimmer may drop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use statecast::dynamo::{create_tables, TableNames};
use statecast_local::engine::{loopback_sdk_config, Engine};
use statecast_local::esm::{stream_arn, stream_handler, DynamoPositions, EsmConfig, EventSourceMapping, PositionStore};

const WAIT: Duration = Duration::from_secs(10);

/// A mapping that stops and starts again on the same positions invokes its handler with the
/// records written since it stopped, and none it had processed before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_mapping_continues_after_its_saved_position() {
    let engine = Engine::embedded(None).await.expect("engine");
    let sdk = loopback_sdk_config(&engine.endpoint).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let tables = TableNames::with_prefix("positions-");
    create_tables(&dynamo, &tables).await.expect("tables");
    let arn = stream_arn(&dynamo, &tables.actors).await.expect("stream");
    let positions = DynamoPositions::open(dynamo.clone(), "positions-esm".into())
        .await
        .expect("positions table");
    let config = EsmConfig {
        poll_interval: Duration::from_millis(5),
        positions: Some(positions.clone()),
        ..EsmConfig::default()
    };
    let put = |n: usize| {
        dynamo
            .put_item()
            .table_name(&tables.actors)
            .item("actorKey", AttributeValue::S(format!("k{n}")))
            .send()
    };
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = || {
        let seen = seen.clone();
        stream_handler(move |event: Event| {
            let seen = seen.clone();
            async move {
                for record in event.records {
                    let key = record.change.keys.get("actorKey").cloned();
                    seen.lock().expect("seen").push(format!("{key:?}"));
                }
                Ok(DynamoDbEventResponse::default())
            }
        })
    };
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);

    let first = EventSourceMapping::start(streams.clone(), arn.clone(), config.clone(), handler());
    for n in 0..5 {
        put(n).await.expect("put");
    }
    assert!(first.wait_idle(WAIT).await);
    let position = first.positions().borrow().clone();
    first.shutdown().await;
    assert_eq!(seen.lock().expect("seen").len(), 5);
    let saved = positions.load(&arn).await.expect("load");
    assert_eq!(saved, position, "the last position is saved when the mapping stops");
    assert_eq!(saved.len(), 1, "one shard: {saved:?}");

    seen.lock().expect("seen").clear();
    let second = EventSourceMapping::start(streams, arn.clone(), config, handler());
    put(5).await.expect("put");
    assert!(second.wait_idle(WAIT).await);
    second.shutdown().await;
    assert_eq!(*seen.lock().expect("seen"), vec![format!("{:?}", Some(s("k5")))]);
    engine.stop().await;
}

fn s(text: &str) -> serde_dynamo::AttributeValue {
    serde_dynamo::AttributeValue::S(text.to_owned())
}
