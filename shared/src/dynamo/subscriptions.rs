//! The subscriptions table: (`actorKey`, `connectionId`) items, with the `byConnection` index
//! for finding everything one connection holds.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::{from_item, s, to_item, DynamoStore, Item, SUBSCRIPTIONS_BY_CONNECTION};
use crate::backoff;
use crate::error::{Error, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{SubscriberPage, SubscriptionStore};
use crate::records::SubscriptionRecord;
use crate::sdk_error::dependency;

/// BatchWriteItem's limit.
const BATCH: usize = 25;
const UNPROCESSED_ATTEMPTS: u32 = 6;

fn subscription_key(actor: &ActorKey, connection: &ConnectionId) -> Item {
    Item::from([
        ("actorKey".to_owned(), s(actor.to_string())),
        ("connectionId".to_owned(), s(connection.as_str())),
    ])
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscriber {
    connection_id: ConnectionId,
    #[serde(default)]
    paths: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscribed {
    actor_key: ActorKey,
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, subscription: &SubscriptionRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.subscriptions)
            .set_item(Some(to_item(subscription, "subscription")?))
            .send()
            .await
            .map_err(|e| dependency("PutItem subscription", e))?;
        Ok(())
    }

    async fn delete_subscription(&self, actor: &ActorKey, connection: &ConnectionId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(subscription_key(actor, connection)))
            .send()
            .await
            .map_err(|e| dependency("DeleteItem subscription", e))?;
        Ok(())
    }

    async fn subscribers(&self, actor: &ActorKey, after: Option<&ConnectionId>) -> Result<SubscriberPage> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.subscriptions)
            .key_condition_expression("actorKey = :actor")
            .expression_attribute_values(":actor", s(actor.to_string()))
            .projection_expression("connectionId, #paths")
            .expression_attribute_names("#paths", "paths")
            .consistent_read(true)
            .limit(self.page_size)
            .set_exclusive_start_key(after.map(|c| subscription_key(actor, c)))
            .send()
            .await
            .map_err(|e| dependency("Query subscribers", e))?;
        let mut page = SubscriberPage::default();
        for item in output.items.unwrap_or_default() {
            let subscriber = from_item::<Subscriber>(item, "subscription")?;
            if let Some(paths) = subscriber.paths {
                page.filters.insert(subscriber.connection_id.clone(), paths);
            }
            page.connections.push(subscriber.connection_id);
        }
        let next = match output.last_evaluated_key {
            Some(key) => Some(from_item::<Subscriber>(key, "subscription page key")?.connection_id),
            None => None,
        };
        page.next = next;
        Ok(page)
    }

    async fn subscriptions_of(&self, connection: &ConnectionId) -> Result<Vec<ActorKey>> {
        let mut actors = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.subscriptions)
                .index_name(SUBSCRIPTIONS_BY_CONNECTION)
                .key_condition_expression("connectionId = :connection")
                .expression_attribute_values(":connection", s(connection.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dependency("Query subscriptions by connection", e))?;
            for item in output.items.unwrap_or_default() {
                actors.push(from_item::<Subscribed>(item, "subscription")?.actor_key);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(actors);
            }
        }
    }

    async fn delete_subscriptions(&self, connection: &ConnectionId, actors: &[ActorKey]) -> Result<()> {
        for chunk in actors.chunks(BATCH) {
            let mut pending = chunk
                .iter()
                .map(|actor| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(subscription_key(actor, connection)))
                        .build();
                    delete.map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Dependency {
                    operation: "BatchWriteItem",
                    retryable: false,
                    source: Box::new(e),
                })?;
            for attempt in 0.. {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.tables.subscriptions, pending)
                    .send()
                    .await
                    .map_err(|e| dependency("BatchWriteItem subscriptions", e))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.tables.subscriptions))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt + 1 >= UNPROCESSED_ATTEMPTS {
                    return Err(Error::Dependency {
                        operation: "BatchWriteItem subscriptions",
                        retryable: true,
                        source: format!(
                            "{} deletes still unprocessed after {UNPROCESSED_ATTEMPTS} attempts",
                            pending.len()
                        )
                        .into(),
                    });
                }
                backoff::sleep(attempt, Duration::from_millis(20), Duration::from_secs(1)).await;
            }
        }
        Ok(())
    }
}
