//! Where a mapping's position is kept across restarts: the sequence number of the last record
//! processed (or sent to the sink) on each shard, as AWS keeps an event source mapping's
//! position across deployments. [`DynamoPositions`] stores it as items of a local-only table
//! in the same engine, so `--data FILE` keeps data and positions in one file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use tokio::sync::{oneshot, watch};
use tracing::{debug, warn};

/// Sequence number of the last record handled, by shard id.
pub type ShardPositions = BTreeMap<String, String>;

/// A store of mapping positions, keyed by stream ARN and shard id.
#[async_trait]
pub trait PositionStore: fmt::Debug + Send + Sync {
    /// Every shard position saved for `stream_arn`.
    async fn load(&self, stream_arn: &str) -> Result<ShardPositions, PositionError>;
    async fn save(&self, stream_arn: &str, shard_id: &str, sequence_number: &str) -> Result<(), PositionError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    #[error("{operation} on the positions table failed: {message}")]
    Dynamo { operation: &'static str, message: String },
}

/// Positions as items `{streamArn, shardId, sequenceNumber}` of one table (no stream).
#[derive(Clone)]
pub struct DynamoPositions {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl fmt::Debug for DynamoPositions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoPositions").field("table", &self.table).finish()
    }
}

impl DynamoPositions {
    /// Uses `table`, creating it when it does not exist yet.
    pub async fn open(client: aws_sdk_dynamodb::Client, table: String) -> Result<Arc<Self>, PositionError> {
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let string = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let created = client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("streamArn", KeyType::Hash).map_err(error("CreateTable"))?)
            .key_schema(key("shardId", KeyType::Range).map_err(error("CreateTable"))?)
            .attribute_definitions(string("streamArn").map_err(error("CreateTable"))?)
            .attribute_definitions(string("shardId").map_err(error("CreateTable"))?)
            .send()
            .await;
        match created {
            Ok(_) => debug!(%table, "positions table created"),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(error("CreateTable")(e)),
        }
        Ok(Arc::new(Self { client, table }))
    }
}

fn error<E: std::error::Error + 'static>(operation: &'static str) -> impl Fn(E) -> PositionError {
    move |e| PositionError::Dynamo {
        operation,
        message: DisplayErrorContext(&e).to_string(),
    }
}

#[async_trait]
impl PositionStore for DynamoPositions {
    async fn load(&self, stream_arn: &str) -> Result<ShardPositions, PositionError> {
        let mut positions = ShardPositions::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("streamArn = :arn")
                .expression_attribute_values(":arn", AttributeValue::S(stream_arn.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(error("Query"))?;
            for item in page.items.unwrap_or_default() {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                if let (Some(shard), Some(sequence)) = (text("shardId"), text("sequenceNumber")) {
                    positions.insert(shard, sequence);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(positions);
            }
        }
    }

    async fn save(&self, stream_arn: &str, shard_id: &str, sequence_number: &str) -> Result<(), PositionError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("streamArn", AttributeValue::S(stream_arn.to_owned()))
            .item("shardId", AttributeValue::S(shard_id.to_owned()))
            .item("sequenceNumber", AttributeValue::S(sequence_number.to_owned()))
            .send()
            .await
            .map_err(error("PutItem"))?;
        Ok(())
    }
}

/// Saves each new position of `positions` (coalescing bursts: only the latest is written),
/// off the polling loop; when `done` fires (or is dropped) it saves the last ones and ends.
pub(super) async fn persist(
    store: Arc<dyn PositionStore>,
    stream_arn: String,
    mut positions: watch::Receiver<ShardPositions>,
    mut done: oneshot::Receiver<()>,
) {
    let mut saved = ShardPositions::new();
    loop {
        let finished = tokio::select! {
            changed = positions.changed() => changed.is_err(),
            _ = &mut done => true,
        };
        let latest = positions.borrow_and_update().clone();
        for (shard, sequence) in latest {
            if saved.get(&shard) == Some(&sequence) {
                continue;
            }
            match store.save(&stream_arn, &shard, &sequence).await {
                Ok(()) => {
                    saved.insert(shard, sequence);
                }
                Err(e) => warn!(%shard, error = %e, "cannot save the mapping's position"),
            }
        }
        if finished {
            return;
        }
    }
}
