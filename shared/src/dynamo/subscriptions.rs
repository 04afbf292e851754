//! The subscriptions table: (`actorKey`, `connectionId`) items, with the `byConnection` index
//! for finding everything one connection holds.
//!
//! An actor's subscriptions start in one partition, `actorKey` = the actor's key (shard 0).
//! Once the fan-out has seen a large audience it marks the actor spread over S shards (a
//! directory item, `connectionId` = [`DIRECTORY`], in shard 0): later subscriptions go to
//! shard `fnv1a(connectionId) % S`, whose partition key is `{actorKey}#{shard}` (shard 0 keeps
//! the bare key). A subscription is read again where it was put: the key of the shard it was
//! stored in comes back from the index (`subscriptions_of`); by actor and connection, shard 0
//! is tried first and the hashed shard when the actor is spread.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};

use super::{from_item, s, to_item, DynamoStore, Item, SUBSCRIPTIONS_BY_CONNECTION};
use crate::backoff;
use crate::error::{Error, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{Held, SubscriberCursor, SubscriberPage, SubscriptionStore};
use crate::records::{MemberRecord, SubscriptionRecord};
use crate::sdk_error::{classify, dependency, DynamoFailure};

/// BatchWriteItem's limit.
const BATCH: usize = 25;
const UNPROCESSED_ATTEMPTS: u32 = 6;
/// The `connectionId` of an actor's shard directory (no API Gateway connection id starts
/// with `#`, and it sorts before them all, so it leads shard 0's first page).
pub const DIRECTORY: &str = "#shards";

/// The partition key of `actor`'s shard `shard`.
fn partition(actor: &ActorKey, shard: u32) -> String {
    match shard {
        0 => actor.to_string(),
        n => format!("{actor}#{n}"),
    }
}

/// The actor and shard of a partition key.
fn parse_partition(key: &str) -> Result<(ActorKey, u32)> {
    let (actor, shard) = match key.rsplit_once('#') {
        Some((actor, shard)) => (actor, shard.parse::<u32>().ok()),
        None => (key, Some(0)),
    };
    let corrupt = |detail: String| Error::Corrupt {
        what: "subscription key",
        detail,
    };
    let shard = shard.ok_or_else(|| corrupt(format!("{key:?} has no shard number after `#`")))?;
    let actor = ActorKey::parse(actor).map_err(|e| corrupt(e.to_string()))?;
    Ok((actor, shard))
}

/// The shard a connection's subscription goes to among `shards` (FNV-1a: stable everywhere).
pub fn shard_of(connection: &ConnectionId, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let hash = connection.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(shards)) as u32
}

fn subscription_key(actor: &ActorKey, shard: u32, connection: &ConnectionId) -> Item {
    Item::from([
        ("actorKey".to_owned(), s(partition(actor, shard))),
        ("connectionId".to_owned(), s(connection.as_str())),
    ])
}

fn directory_key(actor: &ActorKey) -> Item {
    Item::from([
        ("actorKey".to_owned(), s(actor.to_string())),
        ("connectionId".to_owned(), s(DIRECTORY)),
    ])
}

/// The shard count a directory item holds.
fn shards_in(item: &Item) -> u32 {
    match item.get("shards") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(1).max(1),
        _ => 1,
    }
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
    actor_key: String,
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

impl DynamoStore {
    /// How many shards `actor`'s subscriptions are spread over (a strongly consistent read).
    async fn shards(&self, actor: &ActorKey) -> Result<u32> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(directory_key(actor)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem subscription shards", e))?;
        Ok(output.item.as_ref().map_or(1, shards_in))
    }

    /// Deletes one subscription item; `Some` when there was one (with the membership it held).
    async fn delete_in(
        &self,
        actor: &ActorKey,
        shard: u32,
        connection: &ConnectionId,
    ) -> Result<Option<Option<MemberRecord>>> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(subscription_key(actor, shard, connection)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| dependency("DeleteItem subscription", e))?;
        match output.attributes {
            Some(old) if !old.is_empty() => Ok(Some(member_of(Some(old))?)),
            _ => Ok(None),
        }
    }

    /// Sets a member's presence in one shard; `None` when it is not a member there.
    async fn update_presence_in(
        &self,
        actor: &ActorKey,
        shard: u32,
        connection: &ConnectionId,
        presence: &str,
    ) -> Result<Option<MemberRecord>> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.tables.subscriptions)
            .set_key(Some(subscription_key(actor, shard, connection)))
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
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, subscription: &SubscriptionRecord) -> Result<Option<MemberRecord>> {
        let actor = &subscription.actor_key;
        let connection = &subscription.connection_id;
        let shard = shard_of(connection, self.shards(actor).await?);
        let mut item = to_item(subscription, "subscription")?;
        item.insert("actorKey".to_owned(), s(partition(actor, shard)));
        let output = self
            .client
            .put_item()
            .table_name(&self.tables.subscriptions)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| dependency("PutItem subscription", e))?;
        let replaced = member_of(output.attributes)?;
        if shard == 0 {
            return Ok(replaced);
        }
        // Subscribed before the actor was spread: that subscription is replaced too.
        let before = self.delete_in(actor, 0, connection).await?.flatten();
        Ok(replaced.or(before))
    }

    async fn delete_subscription(&self, actor: &ActorKey, connection: &ConnectionId) -> Result<Option<MemberRecord>> {
        if let Some(member) = self.delete_in(actor, 0, connection).await? {
            return Ok(member);
        }
        match shard_of(connection, self.shards(actor).await?) {
            0 => Ok(None),
            shard => Ok(self.delete_in(actor, shard, connection).await?.flatten()),
        }
    }

    async fn update_presence(
        &self,
        actor: &ActorKey,
        connection: &ConnectionId,
        presence: &str,
    ) -> Result<Option<MemberRecord>> {
        if let Some(member) = self.update_presence_in(actor, 0, connection, presence).await? {
            return Ok(Some(member));
        }
        match shard_of(connection, self.shards(actor).await?) {
            0 => Ok(None),
            shard => self.update_presence_in(actor, shard, connection, presence).await,
        }
    }

    async fn spread(&self, actor: &ActorKey, shards: u32) -> Result<()> {
        let mut item = directory_key(actor);
        item.insert("shards".to_owned(), AttributeValue::N(shards.max(1).to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.subscriptions)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(connectionId)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) => match classify("PutItem subscription shards", e) {
                // Spread already (by a concurrent fan-out): it stays as it is.
                DynamoFailure::ConditionFailed(_) => Ok(()),
                other => Err(other.into_error("PutItem subscription shards")),
            },
        }
    }

    async fn subscribers(&self, actor: &ActorKey, from: Option<&SubscriberCursor>) -> Result<SubscriberPage> {
        let cursor = from.cloned().unwrap_or(SubscriberCursor {
            shard: 0,
            end: 0,
            after: None,
        });
        let output = self
            .client
            .query()
            .table_name(&self.tables.subscriptions)
            .key_condition_expression("actorKey = :actor")
            .expression_attribute_values(":actor", s(partition(actor, cursor.shard)))
            .projection_expression("connectionId, #paths, #member, expiresAt, shards")
            .expression_attribute_names("#paths", "paths")
            .expression_attribute_names("#member", "member")
            .consistent_read(true)
            .limit(self.page_size)
            .set_exclusive_start_key(cursor.after.as_ref().map(|c| subscription_key(actor, cursor.shard, c)))
            .send()
            .await
            .map_err(|e| dependency("Query subscribers", e))?;
        let mut page = SubscriberPage::default();
        // Shard 0's first page starts with the directory when the actor is spread.
        let mut end = cursor.end;
        if from.is_none() {
            end = 1;
            page.shards = 1;
        }
        let now = crate::records::now_millis() / 1000;
        for item in output.items.unwrap_or_default() {
            if matches!(item.get("connectionId"), Some(AttributeValue::S(id)) if id == DIRECTORY) {
                if from.is_none() {
                    page.shards = shards_in(&item);
                    end = page.shards;
                }
                continue;
            }
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
        page.next = match output.last_evaluated_key {
            Some(key) => Some(SubscriberCursor {
                shard: cursor.shard,
                end,
                after: Some(from_item::<Subscriber>(key, "subscription page key")?.connection_id),
            }),
            None if cursor.shard + 1 < end => Some(SubscriberCursor {
                shard: cursor.shard + 1,
                end,
                after: None,
            }),
            None => None,
        };
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
                let (actor, shard) = parse_partition(&held.actor_key)?;
                actors.push(Held {
                    actor,
                    shard,
                    member: held.member,
                });
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(actors);
            }
        }
    }

    async fn delete_subscriptions(&self, connection: &ConnectionId, held: &[Held]) -> Result<()> {
        for chunk in held.chunks(BATCH) {
            let pending = chunk
                .iter()
                .map(|held| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(subscription_key(&held.actor, held.shard, connection)))
                        .build();
                    delete.map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Dependency {
                    operation: "BatchWriteItem",
                    retryable: false,
                    source: Box::new(e),
                })?;
            let table = &self.tables.subscriptions;
            backoff::resend_leftovers(
                "BatchWriteItem subscriptions",
                "deletes",
                UNPROCESSED_ATTEMPTS,
                pending,
                |pending| async move {
                    let output = self
                        .client
                        .batch_write_item()
                        .request_items(table, pending)
                        .send()
                        .await
                        .map_err(|e| dependency("BatchWriteItem subscriptions", e))?;
                    Ok(output
                        .unprocessed_items
                        .and_then(|mut u| u.remove(table))
                        .unwrap_or_default())
                },
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_name_their_actor_and_shard() {
        let actor = ActorKey::parse("acme/todo/groceries").expect("key");
        for shard in [0, 1, 31] {
            assert_eq!(
                parse_partition(&partition(&actor, shard)).expect("parse"),
                (actor.clone(), shard)
            );
        }
        assert_eq!(partition(&actor, 0), "acme/todo/groceries");
        assert!(parse_partition("acme/todo/groceries#x").is_err());
    }

    #[test]
    fn connections_spread_over_every_shard_and_stay_put() {
        let mut counts = [0usize; 8];
        for i in 0..8000 {
            let connection = ConnectionId::new(format!("Xy{i}Zw=")).expect("id");
            let shard = shard_of(&connection, 8);
            assert_eq!(shard, shard_of(&connection, 8), "stable");
            counts[shard as usize] += 1;
        }
        assert!(counts.iter().all(|&n| (800..1200).contains(&n)), "{counts:?}");
        assert_eq!(shard_of(&ConnectionId::new("a").expect("id"), 1), 0);
    }
}
