//! Every [`WorkflowWrite`] as one conditional Put or Update on the workflows or actors table
//! (with `#name` / `:value` placeholders), committed by `commit`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{s, to_item, DynamoStore, Item};
use crate::error::{Error, Result};
use crate::records::now_millis;
use crate::workflow::model::{due_key, InstanceUpdate, WorkflowWrite, INSTANCE_SK, TIMER_SHARD};

/// One conditional write, before it becomes a request.
pub(super) struct Op {
    pub(super) table: String,
    pub(super) write: OpWrite,
    pub(super) condition: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

pub(super) enum OpWrite {
    Put(Item),
    Update {
        key: Item,
        expression: String,
    },
    /// Writes nothing; only its condition must hold (inside a transaction).
    Check {
        key: Item,
    },
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn workflow_key(workflow_id: &str, sk: &str) -> Item {
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
    pub(super) fn put_new(&self, table: &str, item: Item, pk: &str) -> Op {
        Op {
            table: table.to_owned(),
            write: OpWrite::Put(item),
            condition: "attribute_not_exists(#pk)".to_owned(),
            names: HashMap::from([("#pk".to_owned(), pk.to_owned())]),
            values: HashMap::new(),
        }
    }

    pub(super) fn op(&self, write: &WorkflowWrite) -> Result<Op> {
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
}
