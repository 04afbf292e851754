//! The actors table: one item per actor with `state`, `version` and `epoch`; its stream
//! (NEW_AND_OLD_IMAGES) drives the fan-out.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{from_item, s, to_item, DynamoStore};
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Version};
use crate::ports::ActorStore;
use crate::records::ActorRecord;
use crate::sdk_error::dependency;

#[async_trait]
impl ActorStore for DynamoStore {
    async fn load(&self, key: &ActorKey) -> Result<Option<ActorRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.actors)
            .key("actorKey", s(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem actor", e))?;
        output.item.map(|item| from_item(item, "actor")).transpose()
    }

    async fn save(&self, record: &ActorRecord, expected: Version) -> Result<()> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.tables.actors)
            .set_item(Some(to_item(record, "actor")?));
        request = if expected == Version::NONE {
            request.condition_expression("attribute_not_exists(actorKey)")
        } else {
            request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(expected.0.to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(record.actor_key.address()))
            }
            Err(e)
                if e.as_service_error()
                    .and_then(|s| s.meta().message())
                    .is_some_and(is_item_too_large) =>
            {
                Err(Error::TooLarge(format!(
                    "the state of {} exceeds DynamoDB's 400 KB item limit",
                    record.actor_key
                )))
            }
            Err(e) => Err(dependency("PutItem actor", e)),
        }
    }
}

fn is_item_too_large(message: &str) -> bool {
    message.contains("Item size") && message.contains("maximum")
}
