//! The one path every conditional write takes: one write as a single conditional request
//! (half the cost of a transaction), several as one `TransactWriteItems`. A failed
//! condition is an answer, not an error: the caller learns which write it was.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};

use super::workflow_writes::{Op, OpWrite};
use super::DynamoStore;
use crate::error::{Error, Result};
use crate::sdk_error::{classify, DynamoFailure};

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Committed {
    Done,
    /// Nothing was written: the condition of the write at this index did not hold.
    Refused(usize),
}

impl DynamoStore {
    /// Makes every write of `ops` or none.
    pub(super) async fn commit_ops(&self, mut ops: Vec<Op>) -> Result<Committed> {
        if ops.len() == 1 && !matches!(ops[0].write, OpWrite::Check { .. }) {
            return self.commit_one(ops.remove(0)).await;
        }
        let items = ops.into_iter().map(transact_item).collect::<Result<Vec<_>>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result.map_err(|e| classify("TransactWriteItems", e)) {
            Ok(_) => Ok(Committed::Done),
            Err(DynamoFailure::Cancelled(reasons, error)) => {
                match reasons
                    .iter()
                    .position(|r| r.as_deref() == Some("ConditionalCheckFailed"))
                {
                    Some(at) => Ok(Committed::Refused(at)),
                    None => Err(error),
                }
            }
            Err(other) => Err(other.into_error("TransactWriteItems")),
        }
    }

    async fn commit_one(&self, op: Op) -> Result<Committed> {
        let names = Some(op.names);
        let values = (!op.values.is_empty()).then_some(op.values);
        let result = match op.write {
            OpWrite::Put(item) => self
                .client
                .put_item()
                .table_name(op.table)
                .set_item(Some(item))
                .condition_expression(op.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("PutItem", e)),
            OpWrite::Update { key, expression } => self
                .client
                .update_item()
                .table_name(op.table)
                .set_key(Some(key))
                .update_expression(expression)
                .condition_expression(op.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify("UpdateItem", e)),
            // `commit_ops` sends a lone check as a transaction; never reached.
            OpWrite::Check { .. } => {
                return Err(Error::Corrupt {
                    what: "conditional write",
                    detail: "a condition check alone is not a request".into(),
                })
            }
        };
        match result {
            Ok(()) => Ok(Committed::Done),
            Err(DynamoFailure::ConditionFailed(_)) => Ok(Committed::Refused(0)),
            Err(other) => Err(other.into_error("conditional write")),
        }
    }
}

fn transact_item(op: Op) -> Result<TransactWriteItem> {
    let build_error = |e: aws_sdk_dynamodb::error::BuildError| Error::Corrupt {
        what: "transaction item",
        detail: e.to_string(),
    };
    let values = (!op.values.is_empty()).then_some(op.values);
    let names = Some(op.names);
    Ok(match op.write {
        OpWrite::Put(item) => TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(op.table)
                    .set_item(Some(item))
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
        OpWrite::Update { key, expression } => TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(op.table)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
        OpWrite::Check { key } => TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(op.table)
                    .set_key(Some(key))
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
    })
}
