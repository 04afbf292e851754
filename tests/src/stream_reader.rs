//! Collects a table's stream records (as Lambda `DynamoDbEvent` records) so a test decides
//! when to hand them to a handler. Reading goes through local mode's event source mapping
//! emulator, so shard iterators, shard roll-over and trimmed data are handled the same way
//! on the embedded engine and on DynamoDB Local.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use statecast_local::esm::{stream_arn, stream_handler, EsmConfig, EsmHandle, EventSourceMapping};

pub struct StreamReader {
    collected: Arc<Mutex<Vec<EventRecord>>>,
    esm: EsmHandle,
}

impl StreamReader {
    pub async fn open(sdk: &SdkConfig, dynamo: &aws_sdk_dynamodb::Client, table: &str) -> StreamReader {
        let arn = stream_arn(dynamo, table).await.expect("the table has a stream");
        let collected = Arc::new(Mutex::new(Vec::new()));
        let sink = collected.clone();
        let handler = stream_handler(move |event: Event| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(event.records);
                Ok(DynamoDbEventResponse::default())
            }
        });
        let config = EsmConfig {
            batch_size: 1000,
            poll_interval: Duration::from_millis(5),
            ..EsmConfig::default()
        };
        let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
        let esm = EventSourceMapping::start(streams, arn, config, handler);
        StreamReader { collected, esm }
    }

    /// Every record written before this call and not returned yet, in stream order.
    pub async fn read_new(&mut self) -> Vec<EventRecord> {
        assert!(
            self.esm.wait_idle(Duration::from_secs(120)).await,
            "the stream was read in time"
        );
        std::mem::take(&mut *self.collected.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// [`Self::read_new`] wrapped as a Lambda event.
    pub async fn next_event(&mut self) -> Event {
        let mut event = Event::default();
        event.records = self.read_new().await;
        event
    }
}
