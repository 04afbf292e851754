//! The actors table: one item per actor with `state`, `version` and `epoch`; its stream
//! (NEW_AND_OLD_IMAGES) drives the fan-out. Every actor write is conditioned on the version
//! its method read and goes through `commit`, alone or with the writes it carries.

use std::collections::HashMap;

use async_trait::async_trait;

use super::commit::Committed;
use super::item_size::{item_size, MAX_ITEM_BYTES};
use super::workflow_writes::{n, Op, OpWrite};
use super::{from_item, s, to_item, DynamoStore, Item};
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Version};
use crate::ports::{ActorStore, ActorWrite};
use crate::records::{now_millis, ActorRecord, CallRecord};
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

    async fn recorded_call(&self, call_key: &str) -> Result<Option<CallRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.calls)
            .key("callKey", s(call_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem call", e))?;
        let record: Option<CallRecord> = output.item.map(|item| from_item(item, "call")).transpose()?;
        // TTL deletes lazily: an expired record no longer counts.
        Ok(record.filter(|r| r.expires_at > now_millis() / 1000))
    }

    async fn write(&self, write: ActorWrite) -> Result<()> {
        let mut ops = vec![self.actor_op(&write.key, write.record.as_ref(), write.expected)?];
        for other in &write.with {
            ops.push(self.op(other)?);
        }
        if let Some(call) = &write.call {
            ops.push(self.call_op(call)?);
        }
        match self.commit_ops(ops).await? {
            Committed::Done => Ok(()),
            Committed::Refused(0) => Err(Error::VersionConflict(write.key.address())),
            Committed::Refused(at) => match write.with.get(at - 1) {
                Some(other) => Err(Error::AlreadyTaken(describe(other))),
                None => Err(Error::CallRecorded(write.call.map(|c| c.call_key).unwrap_or_default())),
            },
        }
    }
}

impl DynamoStore {
    /// The actor's own write: a Put of `record`, or (state unchanged) a check of the version.
    fn actor_op(&self, key: &ActorKey, record: Option<&ActorRecord>, expected: Version) -> Result<Op> {
        let write = match record {
            Some(record) => {
                let item = to_item(record, "actor")?;
                check_size(&item, key)?;
                OpWrite::Put(item)
            }
            None => OpWrite::Check {
                key: Item::from([("actorKey".to_owned(), s(key.to_string()))]),
            },
        };
        let mut op = Op {
            table: self.tables.actors.clone(),
            write,
            condition: "attribute_not_exists(#pk)".to_owned(),
            names: HashMap::from([("#pk".to_owned(), "actorKey".to_owned())]),
            values: HashMap::new(),
        };
        if expected != Version::NONE {
            op.condition = "#version = :expected".to_owned();
            op.names = HashMap::from([("#version".to_owned(), "version".to_owned())]);
            op.values = HashMap::from([(":expected".to_owned(), n(expected.0))]);
        }
        Ok(op)
    }
}

impl DynamoStore {
    /// Records a call's result, unless an unexpired record holds its key.
    fn call_op(&self, call: &CallRecord) -> Result<Op> {
        Ok(Op {
            table: self.tables.calls.clone(),
            write: OpWrite::Put(to_item(call, "call")?),
            condition: "attribute_not_exists(#pk) OR #expires < :now".to_owned(),
            names: HashMap::from([
                ("#pk".to_owned(), "callKey".to_owned()),
                ("#expires".to_owned(), "expiresAt".to_owned()),
            ]),
            values: HashMap::from([(":now".to_owned(), n(now_millis() / 1000))]),
        })
    }
}

/// Refuses an item DynamoDB would refuse, before sending it.
fn check_size(item: &Item, key: &ActorKey) -> Result<()> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(Error::TooLarge(format!(
            "the state of {} would take {size} bytes stored; DynamoDB's item limit is {MAX_ITEM_BYTES}",
            key.address()
        )));
    }
    Ok(())
}

/// What a refused companion write claimed.
fn describe(write: &crate::workflow::model::WorkflowWrite) -> String {
    use crate::workflow::model::WorkflowWrite;
    match write {
        WorkflowWrite::PutInstance(instance) => format!("workflow id {}", instance.workflow_id),
        WorkflowWrite::PutStep(step) => format!("workflow id {}", step.workflow_id),
        WorkflowWrite::PutProgress(record) => format!("workflow progress actor {}", record.actor_key.address()),
        other => format!("{other:?}"),
    }
}
