//! Stream records (Lambda's DynamoDB event) decoded with `serde_dynamo` into the records the
//! stores write: actor changes for the fan-out, workflow item changes for the workflow
//! engine. A record that does not decode becomes an error of its own (logged and skipped by
//! [`crate::batch`]), never a failed batch.

use aws_lambda_events::dynamodb::EventRecord;
use serde::de::DeserializeOwned;
use serde_dynamo::{AttributeValue, Item};

use crate::batch::BatchRecord;
use crate::error::{Error, Result};
use crate::ids::ActorKey;
use crate::records::{ActorChange, ActorRecord};
use crate::workflow::model::{WorkflowChange, WorkflowItem, INSTANCE_SK};

/// One actors-stream record, ordered by its actor.
pub type ActorStreamItem = BatchRecord<ActorKey, ActorChange>;

/// One workflows-stream record, ordered by its item (`workflowId`, `sk`).
pub type WorkflowStreamItem = BatchRecord<(String, String), WorkflowChange>;

/// Decodes an actors-stream record.
pub fn actor_stream_item(record: EventRecord) -> ActorStreamItem {
    let sequence = record.change.sequence_number.unwrap_or_default();
    let stored_key = text(&record.change.keys, "actorKey").and_then(|k| ActorKey::parse(&k).ok());
    let old = image::<ActorRecord>(record.change.old_image, "actor stream record", "old");
    let new = image::<ActorRecord>(record.change.new_image, "actor stream record", "new");
    let item = old.and_then(|old| Ok((old, new?))).and_then(|images| match images {
        (None, Some(new)) => Ok(ActorChange::Created { new }),
        (Some(old), Some(new)) => Ok(ActorChange::Updated { old, new }),
        (Some(old), None) => Ok(ActorChange::Deleted { old }),
        (None, None) => Err(corrupt("actor stream record", "neither image is present".into())),
    });
    let key = match &item {
        Ok(change) => Some(change.key().clone()),
        Err(_) => stored_key,
    };
    BatchRecord { sequence, key, item }
}

/// Decodes a workflows-stream record.
pub fn workflow_stream_item(record: EventRecord) -> WorkflowStreamItem {
    let sequence = record.change.sequence_number.unwrap_or_default();
    let key = text(&record.change.keys, "workflowId").zip(text(&record.change.keys, "sk"));
    let item = workflow_item(record.change.old_image, "old").and_then(|old| {
        let new = workflow_item(record.change.new_image, "new")?;
        Ok(WorkflowChange { old, new })
    });
    BatchRecord { sequence, key, item }
}

fn workflow_item(image: Item, which: &str) -> Result<Option<WorkflowItem>> {
    let is_instance = text(&image, "sk").as_deref() == Some(INSTANCE_SK);
    if is_instance {
        self::image(image, "workflow stream record", which).map(|i| i.map(|i| WorkflowItem::Instance(Box::new(i))))
    } else {
        self::image(image, "workflow stream record", which).map(|i| i.map(WorkflowItem::Step))
    }
}

/// An image as the record the store wrote; `None` when the record has no such image.
fn image<T: DeserializeOwned>(image: Item, what: &'static str, which: &str) -> Result<Option<T>> {
    if image.is_empty() {
        return Ok(None);
    }
    serde_dynamo::from_item(image)
        .map(Some)
        .map_err(|e| corrupt(what, format!("{which} image: {e}")))
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn corrupt(what: &'static str, detail: String) -> Error {
    Error::Corrupt { what, detail }
}
