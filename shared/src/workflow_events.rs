//! Workflows-stream records (Lambda's DynamoDB event) decoded into [`WorkflowStreamItem`]s.

use aws_lambda_events::dynamodb::EventRecord;
use serde_dynamo::Item;

use crate::error::{Error, Result};
use crate::workflow::model::{WorkflowChange, WorkflowItem, INSTANCE_SK};
use crate::workflow::WorkflowStreamItem;

/// Decodes one record; a record that does not decode becomes an error item (logged, skipped).
pub fn workflow_stream_item(record: EventRecord) -> WorkflowStreamItem {
    let sequence = record.change.sequence_number.clone().unwrap_or_default();
    let key = key_of(&record.change.keys);
    let change = match record.event_name.as_str() {
        "INSERT" | "MODIFY" | "REMOVE" => decode(record.change.old_image, "old").and_then(|old| {
            let new = decode(record.change.new_image, "new")?;
            Ok(WorkflowChange { old, new })
        }),
        other => Err(corrupt(format!("unknown eventName {other:?}"))),
    };
    WorkflowStreamItem { sequence, key, change }
}

fn key_of(keys: &Item) -> Option<(String, String)> {
    let text = |name: &str| match keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Some((text("workflowId")?, text("sk")?))
}

fn decode(image: Item, which: &str) -> Result<Option<WorkflowItem>> {
    if image.is_empty() {
        return Ok(None);
    }
    let is_instance = matches!(image.get("sk"), Some(serde_dynamo::AttributeValue::S(sk)) if sk == INSTANCE_SK);
    let item = if is_instance {
        serde_dynamo::from_item(image).map(|i| WorkflowItem::Instance(Box::new(i)))
    } else {
        serde_dynamo::from_item(image).map(WorkflowItem::Step)
    };
    item.map(Some).map_err(|e| corrupt(format!("{which} image: {e}")))
}

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        what: "workflow stream record",
        detail,
    }
}
