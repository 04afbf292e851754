//! Reads a table's DynamoDB stream through the Streams API (aws-sdk-dynamodbstreams) and
//! converts each record into the Lambda event shape (`aws_lambda_events::dynamodb::EventRecord`).

use aws_config::SdkConfig;
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    iterators: Vec<Option<String>>,
}

impl StreamReader {
    pub async fn open(sdk: &SdkConfig, dynamo: &aws_sdk_dynamodb::Client, table: &str) -> StreamReader {
        let table = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe table");
        let stream_arn = table
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the table has a stream");
        let client = aws_sdk_dynamodbstreams::Client::new(sdk);
        let stream = client
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .expect("describe stream");
        let shards = stream.stream_description.and_then(|d| d.shards).unwrap_or_default();
        let mut iterators = Vec::new();
        for shard in shards {
            let iterator = client
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(shard.shard_id.unwrap_or_default())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("shard iterator");
            iterators.push(iterator.shard_iterator);
        }
        StreamReader {
            client,
            stream_arn,
            iterators,
        }
    }

    /// Every record written since the last call, in stream order.
    pub async fn read_new(&mut self) -> Vec<EventRecord> {
        let mut records = Vec::new();
        for slot in &mut self.iterators {
            while let Some(iterator) = slot.clone() {
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                    .expect("get records");
                let batch = page.records.unwrap_or_default();
                let empty = batch.is_empty();
                records.extend(batch.into_iter().map(|r| to_event_record(r, &self.stream_arn)));
                *slot = page.next_shard_iterator;
                if empty {
                    break;
                }
            }
        }
        records
    }

    /// [`Self::read_new`] wrapped as a Lambda event.
    pub async fn next_event(&mut self) -> Event {
        let mut event = Event::default();
        event.records = self.read_new().await;
        event
    }
}

/// The Lambda event record for one Streams API record.
pub fn to_event_record(record: Record, stream_arn: &str) -> EventRecord {
    let mut event = EventRecord::default();
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record.event_name.map(|n| n.as_str().to_owned()).unwrap_or_default();
    event.event_source = Some("aws:dynamodb".to_owned());
    event.event_version = record.event_version;
    event.aws_region = record.aws_region.unwrap_or_default();
    event.event_source_arn = Some(stream_arn.to_owned());
    if let Some(change) = record.dynamodb {
        event.change.keys = change.keys.unwrap_or_default().into();
        event.change.new_image = change.new_image.unwrap_or_default().into();
        event.change.old_image = change.old_image.unwrap_or_default().into();
        event.change.sequence_number = change.sequence_number;
        event.change.size_bytes = change.size_bytes.unwrap_or_default();
    }
    event
}
