//! The subscriptions table: (`actorKey`, `connectionId`) items, with the `byConnection` index
//! for finding everything one connection holds.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};

use super::{from_item, s, to_item, DynamoStore, Item, SUBSCRIPTIONS_BY_CONNECTION};
use crate::backoff;
use crate::error::{Error, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{Held, SubscriberPage, SubscriptionStore};
use crate::records::{MemberRecord, SubscriptionRecord};
use crate::sdk_error::{classify, dependency, DynamoFailure};

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
    #[serde(default)]
    member: Option<MemberRecord>,
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscribed {
    actor_key: ActorKey,
    #[serde(default)]
    member: Option<MemberRecord>,
}

/// The membership held by a subscription item a write returned (its old or new image).
fn member_of(item: Option<Item>) -> Result<Option<MemberRecord>> {
    #[derive(serde::Deserialize)]
    struct Membership {
        #[serde(default)]
        member: Option<MemberRecord>,
    }
    match item {
        Some(item) if item.contains_key("member") => Ok(from_item::<Membership>(item, "subscription")?.member),
        _ => Ok(None),
    }
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, subscription: &SubscriptionRecord) -> Result<Option<MemberRecord>> {
        let output = self
            .client
            .put_item()
            .table_name(&self.tables.subscriptions)
            .set_item(Some(to_item(subscription, "subscription")?))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| dependency("PutItem subscription", e))?;
        member_of(output.attributes)
    }

    async fn delete_subscription(&self, actor: &ActorKey, connection: &ConnectionId) -> Result<Option<MemberRecord>> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(subscription_key(actor, connection)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| dependency("DeleteItem subscription", e))?;
        member_of(output.attributes)
    }

    async fn update_presence(
        &self,
        actor: &ActorKey,
        connection: &ConnectionId,
        presence: &str,
    ) -> Result<Option<MemberRecord>> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(subscription_key(actor, connection)))
            .update_expression("SET #member.#presence = :presence, #member.#rev = #member.#rev + :one")
            .condition_expression("attribute_exists(#member)")
            .expression_attribute_names("#member", "member")
            .expression_attribute_names("#presence", "presence")
            .expression_attribute_names("#rev", "rev")
            .expression_attribute_values(":presence", s(presence))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(output) => member_of(output.attributes),
            Err(e) => match classify("UpdateItem subscription presence", e) {
                DynamoFailure::ConditionFailed(_) => Ok(None),
                other => Err(other.into_error("UpdateItem subscription presence")),
            },
        }
    }

    async fn subscribers(&self, actor: &ActorKey, after: Option<&ConnectionId>) -> Result<SubscriberPage> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.subscriptions)
            .key_condition_expression("actorKey = :actor")
            .expression_attribute_values(":actor", s(actor.to_string()))
            .projection_expression("connectionId, #paths, #member, expiresAt")
            .expression_attribute_names("#paths", "paths")
            .expression_attribute_names("#member", "member")
            .consistent_read(true)
            .limit(self.page_size)
            .set_exclusive_start_key(after.map(|c| subscription_key(actor, c)))
            .send()
            .await
            .map_err(|e| dependency("Query subscribers", e))?;
        let mut page = SubscriberPage::default();
        let now = crate::records::now_millis() / 1000;
        for item in output.items.unwrap_or_default() {
            let subscriber = from_item::<Subscriber>(item, "subscription")?;
            // DynamoDB deletes expired items lazily (within days): past their TTL they are gone.
            if subscriber.expires_at.is_some_and(|at| at < now) {
                page.expired.push(subscriber.connection_id);
                continue;
            }
            if let Some(paths) = subscriber.paths {
                page.filters.insert(subscriber.connection_id.clone(), paths);
            }
            if let Some(member) = subscriber.member {
                page.members.push((subscriber.connection_id.clone(), member));
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

    async fn subscriptions_of(&self, connection: &ConnectionId) -> Result<Vec<Held>> {
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
                let held = from_item::<Subscribed>(item, "subscription")?;
                actors.push(Held {
                    actor: held.actor_key,
                    member: held.member,
                });
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
