//! The workflows table behind [`WorkflowStore`]: every [`WorkflowWrite`] becomes one
//! conditional Put or Update; a commit of one write is a single request, of several a
//! `TransactWriteItems`. A failed condition is [`Commit::Refused`]; a transaction conflict
//! is a retryable error.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};

use super::{from_item, s, to_item, DynamoStore, Item, WORKFLOWS_BY_DUE};
use crate::error::{Error, Result};
use crate::ids::Version;
use crate::records::now_millis;
use crate::sdk_error::dependency;
use crate::workflow::model::{
    due_key, Commit, InstanceRecord, InstanceUpdate, StepRecord, Timer, WorkflowWrite, INSTANCE_SK, TIMER_SHARD,
};
use crate::workflow::WorkflowStore;

/// One conditional write, before it becomes a request.
struct Op {
    table: String,
    write: OpWrite,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

enum OpWrite {
    Put(Item),
    Update { key: Item, expression: String },
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn workflow_key(workflow_id: &str, sk: &str) -> Item {
    Item::from([("workflowId".to_owned(), s(workflow_id)), ("sk".to_owned(), s(sk))])
}

fn json_value(value: &serde_json::Value) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(|e| Error::Corrupt {
        what: "workflow value",
        detail: e.to_string(),
    })
}

/// Builds an Update with `#name` placeholders for attribute names.
struct UpdateBuilder {
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl UpdateBuilder {
    fn new() -> Self {
        Self {
            sets: Vec::new(),
            adds: Vec::new(),
            removes: Vec::new(),
            conditions: vec!["attribute_exists(#pk)".to_owned()],
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{}", attribute.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{placeholder}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn build(mut self, table: &str, key: Item, pk: &str) -> Op {
        self.names.insert("#pk".to_owned(), pk.to_owned());
        let mut expression = Vec::new();
        if !self.sets.is_empty() {
            expression.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            expression.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            expression.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        Op {
            table: table.to_owned(),
            write: OpWrite::Update {
                key,
                expression: expression.join(" "),
            },
            condition: self.conditions.join(" AND "),
            names: self.names,
            values: self.values,
        }
    }
}

impl DynamoStore {
    fn put_new(&self, table: &str, item: Item, pk: &str) -> Op {
        Op {
            table: table.to_owned(),
            write: OpWrite::Put(item),
            condition: "attribute_not_exists(#pk)".to_owned(),
            names: HashMap::from([("#pk".to_owned(), pk.to_owned())]),
            values: HashMap::new(),
        }
    }

    fn op(&self, write: &WorkflowWrite) -> Result<Op> {
        let workflows = self.tables.workflows.as_str();
        Ok(match write {
            WorkflowWrite::PutInstance(instance) => self.put_new(
                workflows,
                to_item(instance.as_ref(), "workflow instance")?,
                "workflowId",
            ),
            WorkflowWrite::PutStep(step) => self.put_new(workflows, to_item(step, "workflow step")?, "workflowId"),
            WorkflowWrite::PutProgress(record) => {
                self.put_new(&self.tables.actors, to_item(record, "workflow progress")?, "actorKey")
            }
            WorkflowWrite::SaveActor { record, expected } => {
                let mut op = self.put_new(&self.tables.actors, to_item(record, "actor")?, "actorKey");
                if *expected != Version::NONE {
                    op.condition = "#version = :expected".to_owned();
                    op.names = HashMap::from([("#version".to_owned(), "version".to_owned())]);
                    op.values = HashMap::from([(":expected".to_owned(), n(expected.0))]);
                }
                op
            }
            WorkflowWrite::FinishStep {
                workflow_id,
                sk,
                attempt,
                status,
            } => {
                let mut u = UpdateBuilder::new();
                let (st, at, rem) = (u.name("status"), u.name("attempt"), u.name("remaining"));
                let (due, shard) = (u.name("dueAt"), u.name("timerShard"));
                let new = u.value("status", s(status.as_str()));
                let waiting = u.value("waiting", s("waiting"));
                let attempt = u.value("attempt", n(attempt));
                let zero = u.value("zero", n(0));
                u.sets.push(format!("{st} = {new}"));
                u.removes.extend([due, shard]);
                u.conditions
                    .push(format!("{st} = {waiting} AND {at} = {attempt} AND {rem} = {zero}"));
                u.build(workflows, workflow_key(workflow_id, sk), "workflowId")
            }
            WorkflowWrite::RetryStep {
                workflow_id,
                sk,
                attempt,
                due_at,
            } => {
                let mut u = UpdateBuilder::new();
                let (st, at) = (u.name("status"), u.name("attempt"));
                let waiting = u.value("waiting", s("waiting"));
                let current = u.value("attempt", n(attempt));
                let next = u.value("next", n(attempt + 1));
                u.sets.push(format!("{at} = {next}"));
                if let Some(due_at) = due_at {
                    let (due, shard) = (u.name("dueAt"), u.name("timerShard"));
                    let due_value = u.value("due", s(due_key(*due_at)));
                    let shard_value = u.value("shard", s(TIMER_SHARD));
                    u.sets.push(format!("{due} = {due_value}"));
                    u.sets.push(format!("{shard} = {shard_value}"));
                }
                u.conditions.push(format!("{st} = {waiting} AND {at} = {current}"));
                u.build(workflows, workflow_key(workflow_id, sk), "workflowId")
            }
            WorkflowWrite::ResolveDependency {
                workflow_id,
                sk,
                dependency,
                unmet,
            } => {
                let mut u = UpdateBuilder::new();
                let (rem, resolved) = (u.name("remaining"), u.name("resolved"));
                let one = u.value("one", n(1));
                let dep = u.value("dep", s(dependency.as_str()));
                let set = u.value("deps", AttributeValue::Ss(vec![dependency.clone()]));
                u.sets.push(format!("{rem} = {rem} - {one}"));
                if *unmet {
                    let unmet = u.name("unmet");
                    u.sets.push(format!("{unmet} = {unmet} + {one}"));
                }
                u.adds.push(format!("{resolved} {set}"));
                u.conditions.push(format!("NOT contains({resolved}, {dep})"));
                u.build(workflows, workflow_key(workflow_id, sk), "workflowId")
            }
            WorkflowWrite::FireTimer {
                workflow_id,
                sk,
                due_at,
            } => {
                let mut u = UpdateBuilder::new();
                let (due, shard) = (u.name("dueAt"), u.name("timerShard"));
                let expected = u.value("due", s(due_at.as_str()));
                u.removes.extend([due.clone(), shard]);
                u.conditions.push(format!("{due} = {expected}"));
                u.build(workflows, workflow_key(workflow_id, sk), "workflowId")
            }
            WorkflowWrite::UpdateInstance(update) => self.instance_update(update)?,
            WorkflowWrite::Progress { actor, sets } => {
                let mut u = UpdateBuilder::new();
                let state = u.name("state");
                for (i, (path, value)) in sets.iter().enumerate() {
                    let mut target = state.clone();
                    for (j, part) in path.iter().enumerate() {
                        let placeholder = format!("#p{i}_{j}");
                        u.names.insert(placeholder.clone(), part.clone());
                        target.push('.');
                        target.push_str(&placeholder);
                    }
                    let value = u.value(&format!("v{i}"), json_value(value)?);
                    u.sets.push(format!("{target} = {value}"));
                }
                let (version, updated) = (u.name("version"), u.name("updatedAt"));
                let one = u.value("one", n(1));
                let now = u.value("now", n(now_millis()));
                u.sets.push(format!("{version} = {version} + {one}"));
                u.sets.push(format!("{updated} = {now}"));
                let key = Item::from([("actorKey".to_owned(), s(actor.to_string()))]);
                u.build(&self.tables.actors, key, "actorKey")
            }
        })
    }

    fn instance_update(&self, update: &InstanceUpdate) -> Result<Op> {
        let mut u = UpdateBuilder::new();
        if update.pending_delta != 0 {
            let pending = u.name("pending");
            let delta = u.value("delta", n(update.pending_delta));
            u.sets.push(format!("{pending} = {pending} + {delta}"));
        }
        if let Some((step, output)) = &update.output {
            let outputs = u.name("outputs");
            let entry = AttributeValue::M(Item::from([
                ("step".to_owned(), s(step.as_str())),
                ("json".to_owned(), s(output.to_string())),
            ]));
            let value = u.value("output", AttributeValue::L(vec![entry]));
            let empty = u.value("none", AttributeValue::L(Vec::new()));
            u.sets.push(format!(
                "{outputs} = list_append(if_not_exists({outputs}, {empty}), {value})"
            ));
        }
        if let Some(step) = &update.completed {
            let completed = u.name("completed");
            let list = u.value("completed", AttributeValue::L(vec![s(step.as_str())]));
            let empty = u.value("nothing", AttributeValue::L(Vec::new()));
            u.sets.push(format!(
                "{completed} = list_append(if_not_exists({completed}, {empty}), {list})"
            ));
        }
        if let Some(order) = &update.compensation_order {
            let name = u.name("compensationOrder");
            let list = u.value(
                "order",
                AttributeValue::L(order.iter().map(|o| s(o.as_str())).collect()),
            );
            u.sets.push(format!("{name} = {list}"));
        }
        let status = u.name("status");
        if let Some(new) = update.status {
            let value = u.value("status", s(new.as_str()));
            u.sets.push(format!("{status} = {value}"));
        }
        if let Some(cause) = &update.cause {
            let name = u.name("cause");
            let value = u.value("cause", s(cause.as_str()));
            u.sets.push(format!("{name} = {value}"));
        }
        if update.cancel_requested {
            let name = u.name("cancelRequested");
            let value = u.value("cancel", AttributeValue::Bool(true));
            u.sets.push(format!("{name} = {value}"));
        }
        if let Some(at) = update.finished_at {
            let name = u.name("finishedAt");
            let value = u.value("finished", n(at));
            u.sets.push(format!("{name} = {value}"));
        }
        if let Some(required) = update.require {
            let value = u.value("required", s(required.as_str()));
            u.conditions.push(format!("{status} = {value}"));
        }
        u.names.retain(|placeholder, _| {
            placeholder == "#pk"
                || u.sets
                    .iter()
                    .chain(&u.conditions)
                    .any(|e| e.contains(placeholder.as_str()))
        });
        Ok(u.build(
            &self.tables.workflows,
            workflow_key(&update.workflow_id, INSTANCE_SK),
            "workflowId",
        ))
    }

    async fn commit_one(&self, op: Op) -> Result<Commit> {
        let refused = |code: Option<&str>| code == Some("ConditionalCheckFailedException");
        match op.write {
            OpWrite::Put(item) => {
                let result = self
                    .client
                    .put_item()
                    .table_name(op.table)
                    .set_item(Some(item))
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(Some(op.names))
                    .set_expression_attribute_values((!op.values.is_empty()).then_some(op.values))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(Commit::Done),
                    Err(e) if refused(e.as_service_error().and_then(|s| s.meta().code())) => Ok(Commit::Refused),
                    Err(e) => Err(dependency("PutItem workflow", e)),
                }
            }
            OpWrite::Update { key, expression } => {
                let result = self
                    .client
                    .update_item()
                    .table_name(op.table)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(Some(op.names))
                    .set_expression_attribute_values((!op.values.is_empty()).then_some(op.values))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(Commit::Done),
                    Err(e) if refused(e.as_service_error().and_then(|s| s.meta().code())) => Ok(Commit::Refused),
                    Err(e) => Err(dependency("UpdateItem workflow", e)),
                }
            }
        }
    }
}

fn transact_item(op: Op) -> Result<TransactWriteItem> {
    let build_error = |e: aws_sdk_dynamodb::error::BuildError| Error::Corrupt {
        what: "workflow transaction",
        detail: e.to_string(),
    };
    let values = (!op.values.is_empty()).then_some(op.values);
    Ok(match op.write {
        OpWrite::Put(item) => TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(op.table)
                    .set_item(Some(item))
                    .condition_expression(op.condition)
                    .set_expression_attribute_names(Some(op.names))
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
                    .set_expression_attribute_names(Some(op.names))
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
    })
}

#[async_trait]
impl WorkflowStore for DynamoStore {
    async fn commit(&self, writes: Vec<WorkflowWrite>) -> Result<Commit> {
        let mut ops = writes.iter().map(|w| self.op(w)).collect::<Result<Vec<_>>>()?;
        if ops.len() == 1 {
            return self.commit_one(ops.remove(0)).await;
        }
        let items = ops.into_iter().map(transact_item).collect::<Result<Vec<_>>>()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Commit::Done),
            Err(e) => {
                let reasons: Vec<String> = e
                    .as_service_error()
                    .and_then(|s| match s {
                        TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .map(|c| {
                        c.cancellation_reasons()
                            .iter()
                            .filter_map(|r| r.code().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                    return Ok(Commit::Refused);
                }
                let conflict = reasons.iter().any(|r| r == "TransactionConflict");
                match dependency("TransactWriteItems workflow", e) {
                    Error::Dependency { operation, source, .. } if conflict => Err(Error::Dependency {
                        operation,
                        retryable: true,
                        source,
                    }),
                    other => Err(other),
                }
            }
        }
    }

    async fn instance(&self, workflow_id: &str) -> Result<Option<InstanceRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.workflows)
            .set_key(Some(workflow_key(workflow_id, INSTANCE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem workflow", e))?;
        output.item.map(|item| from_item(item, "workflow instance")).transpose()
    }

    async fn instance_and_step(
        &self,
        workflow_id: &str,
        sk: &str,
    ) -> Result<(Option<InstanceRecord>, Option<StepRecord>)> {
        let keys = KeysAndAttributes::builder()
            .keys(workflow_key(workflow_id, INSTANCE_SK))
            .keys(workflow_key(workflow_id, sk))
            .consistent_read(true)
            .build()
            .map_err(|e| Error::Corrupt {
                what: "workflow read",
                detail: e.to_string(),
            })?;
        let mut pending = HashMap::from([(self.tables.workflows.clone(), keys)]);
        let (mut instance, mut step) = (None, None);
        for attempt in 0..6u32 {
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| dependency("BatchGetItem workflow", e))?;
            for item in output.responses.unwrap_or_default().into_values().flatten() {
                if item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(INSTANCE_SK) {
                    instance = Some(from_item(item, "workflow instance")?);
                } else {
                    step = Some(from_item(item, "workflow step")?);
                }
            }
            pending = output.unprocessed_keys.unwrap_or_default();
            if pending.is_empty() {
                return Ok((instance, step));
            }
            crate::backoff::sleep(
                attempt,
                std::time::Duration::from_millis(10),
                std::time::Duration::from_millis(500),
            )
            .await;
        }
        Err(Error::Dependency {
            operation: "BatchGetItem workflow",
            retryable: true,
            source: "keys left unprocessed after every attempt".into(),
        })
    }

    async fn due_timers(&self, now: i64, limit: i32) -> Result<Vec<Timer>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.workflows)
            .index_name(WORKFLOWS_BY_DUE)
            .key_condition_expression("#shard = :shard AND #due <= :now")
            .expression_attribute_names("#shard", "timerShard")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_values(":shard", s(TIMER_SHARD))
            .expression_attribute_values(":now", s(due_key(now)))
            .limit(limit.max(1))
            .send()
            .await
            .map_err(|e| dependency("Query workflow timers", e))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item(item, "workflow timer"))
            .collect()
    }
}
