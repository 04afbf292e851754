//! The connections table: one item per live connection, keyed by `connectionId`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{from_item, s, to_item, DynamoStore, Item};
use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::ports::ConnectionStore;
use crate::records::ConnectionRecord;
use crate::sdk_error::{classify, dependency, DynamoFailure};
use crate::service::RateLimit;

/// The rate limit's attributes on a connection item: the window counted in, and the count.
const WINDOW: &str = "rateWindow";
const COUNT: &str = "rateCount";

/// Rounds of "count in this window / start a new one" before giving up under contention.
const ADMIT_ROUNDS: usize = 4;

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number_of(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, connection: &ConnectionRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(to_item(connection, "connection")?))
            .send()
            .await
            .map_err(|e| dependency("PutItem connection", e))?;
        Ok(())
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>> {
        let item = self.raw_connection(id).await?;
        item.map(|item| from_item(item, "connection")).transpose()
    }

    async fn admit(&self, id: &ConnectionId, limit: &RateLimit, now_millis: i64) -> Result<ConnectionRecord> {
        let (mut window, retry_after_ms) = limit.window_at(now_millis);
        let too_fast = Error::TooFast {
            max: limit.max,
            window_ms: limit.window.as_millis() as u64,
            retry_after_ms,
        };
        for _ in 0..ADMIT_ROUNDS {
            // The common case, one write: one more in the window already being counted.
            let counted = self
                .client
                .update_item()
                .table_name(&self.tables.connections)
                .key("connectionId", s(id.as_str()))
                .update_expression("SET #count = #count + :one")
                .condition_expression("attribute_exists(connectionId) AND #window = :window AND #count < :max")
                .expression_attribute_names("#window", WINDOW)
                .expression_attribute_names("#count", COUNT)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":window", n(window))
                .expression_attribute_values(":max", n(i64::from(limit.max)))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let old = match counted {
                Ok(output) => return admitted(output.attributes),
                Err(e) => match classify("UpdateItem connection (rate limit)", e) {
                    DynamoFailure::ConditionFailed(Some(item)) => item,
                    // An engine that does not return the item: read it.
                    DynamoFailure::ConditionFailed(None) => match self.raw_connection(id).await? {
                        Some(item) => item,
                        None => return Err(Error::UnknownConnection),
                    },
                    other => return Err(other.into_error("UpdateItem connection (rate limit)")),
                },
            };
            match number_of(&old, WINDOW) {
                Some(counted) if counted == window => return Err(too_fast),
                // Another instance's clock is ahead: count in its window.
                Some(counted) if counted > window => {
                    window = counted;
                    continue;
                }
                _ => {}
            }
            // The first message of a new window.
            let started = self
                .client
                .update_item()
                .table_name(&self.tables.connections)
                .key("connectionId", s(id.as_str()))
                .update_expression("SET #window = :window, #count = :one")
                .condition_expression(
                    "attribute_exists(connectionId) AND (attribute_not_exists(#window) OR #window < :window)",
                )
                .expression_attribute_names("#window", WINDOW)
                .expression_attribute_names("#count", COUNT)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":window", n(window))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match started {
                Ok(output) => return admitted(output.attributes),
                Err(e) => match classify("UpdateItem connection (rate window)", e) {
                    // Another request started this window first (or the connection went).
                    DynamoFailure::ConditionFailed(_) => continue,
                    other => return Err(other.into_error("UpdateItem connection (rate window)")),
                },
            }
        }
        Err(too_fast)
    }

    async fn delete_connection(&self, id: &ConnectionId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.connections)
            .key("connectionId", s(id.as_str()))
            .send()
            .await
            .map_err(|e| dependency("DeleteItem connection", e))?;
        Ok(())
    }
}

impl DynamoStore {
    /// The connection item with every attribute (strongly consistent).
    async fn raw_connection(&self, id: &ConnectionId) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("connectionId", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem connection", e))?;
        Ok(output.item)
    }
}

/// The connection as an admitting write returned it.
fn admitted(item: Option<Item>) -> Result<ConnectionRecord> {
    let item = item.ok_or(Error::UnknownConnection)?;
    from_item(item, "connection")
}
