//! The state document `/_inspector/api/state` answers, built from the journal, the gateway's
//! connections (their tenant and subscriptions read from the tables by key and index, never a
//! scan), the mappings' observers and the application's workflow definitions.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use statecast::ids::ConnectionId;
use statecast::ports::{ConnectionStore, SubscriptionStore};
use statecast::records::now_millis;
use statecast::workflow::WorkflowDefinition;

use super::{ActorEntry, Inspector};

impl Inspector {
    /// The whole document.
    pub async fn snapshot(&self) -> Value {
        let actors = self.journal.actors();
        json!({
            "at": now_millis(),
            "connections": self.connections().await,
            "actors": actors,
            "calls": self.journal.calls(),
            "frames": self.journal.frames(),
            "mappings": self.mapping_views(),
            "workflows": self.workflows(&actors),
        })
    }

    async fn connections(&self) -> Vec<Value> {
        let mut shown = Vec::new();
        for connection in self.gateway.connections() {
            let (tenant, subscriptions, error) = match ConnectionId::new(connection.id.clone()) {
                Ok(id) => {
                    let record = self.store.get_connection(&id).await;
                    let subscriptions = self.store.subscriptions_of(&id).await;
                    let error = [record.as_ref().err(), subscriptions.as_ref().err()]
                        .into_iter()
                        .flatten()
                        .map(|e| statecast::error::chain(e))
                        .next();
                    let tenant = record.ok().flatten().map(|r| r.tenant.to_string());
                    let actors: Vec<String> = subscriptions
                        .unwrap_or_default()
                        .into_iter()
                        .map(|held| held.actor.address())
                        .collect();
                    (tenant, actors, error)
                }
                Err(e) => (None, Vec::new(), Some(e.to_string())),
            };
            shown.push(json!({
                "id": connection.id,
                "connectedAt": connection.connected_at,
                "lastActiveAt": connection.last_active_at.load(Ordering::Relaxed),
                "sourceIp": connection.source_ip,
                "userAgent": connection.user_agent,
                "open": connection.open.load(Ordering::Relaxed),
                "tenant": tenant,
                "subscriptions": subscriptions,
                "error": error,
            }));
        }
        shown
    }

    fn mapping_views(&self) -> Vec<Value> {
        self.mappings()
            .into_iter()
            .map(|mapping| {
                let stats = mapping.observer.stats();
                let failures: Vec<Value> = mapping
                    .observer
                    .failures()
                    .into_iter()
                    .map(|f| {
                        json!({
                            "shard": f.shard_id,
                            "firstSequenceNumber": f.first_sequence_number,
                            "lastSequenceNumber": f.last_sequence_number,
                            "records": f.record_count,
                            "attempts": f.attempts,
                            "reason": f.reason.to_string(),
                        })
                    })
                    .collect();
                json!({
                    "name": mapping.name,
                    "function": mapping.function,
                    "table": mapping.table,
                    "positions": mapping.observer.positions(),
                    "lastBatch": self.journal.last_batch(mapping.name),
                    "stats": {
                        "invocations": stats.invocations,
                        "recordsDelivered": stats.records_delivered,
                        "recordsProcessed": stats.records_processed,
                        "recordsFailed": stats.records_failed,
                        "retries": stats.retries,
                        "bisections": stats.bisections,
                    },
                    "onFailure": failures,
                })
            })
            .collect()
    }

    /// Each workflow instance (its progress actor) as a graph: the definition's steps in
    /// layers (a step sits one layer after the last step it runs after), with their status
    /// and attempts from the progress state.
    fn workflows(&self, actors: &[ActorEntry]) -> Vec<Value> {
        actors
            .iter()
            .filter(|a| a.actor_type == statecast::workflow::PROGRESS_ACTOR_TYPE)
            .map(|actor| {
                let name = actor.state["workflow"].as_str().unwrap_or_default();
                let definition = self.application.workflows().workflow(name);
                let steps = match &definition {
                    Some(definition) => graph(definition, &actor.state["steps"]),
                    None => Vec::new(),
                };
                json!({
                    "actor": actor.key,
                    "workflowId": actor.key.rsplit('/').next().unwrap_or_default(),
                    "workflow": name,
                    "status": actor.state["status"],
                    "cause": actor.state["cause"],
                    "version": actor.version,
                    "requestId": actor.request_id,
                    "steps": steps,
                })
            })
            .collect()
    }
}

/// The steps of `definition` with their layer, edges and progress.
fn graph(definition: &WorkflowDefinition, progress: &Value) -> Vec<Value> {
    let mut layers: BTreeMap<&str, usize> = BTreeMap::new();
    // Definitions are validated acyclic; a step's layer is settled once all it runs after are.
    for _ in 0..definition.steps.len() {
        for step in &definition.steps {
            let layer = step
                .run_after
                .keys()
                .map(|after| layers.get(after.as_str()).map_or(0, |l| l + 1))
                .max()
                .unwrap_or(0);
            layers.insert(step.name.as_str(), layer);
        }
    }
    definition
        .steps
        .iter()
        .map(|step| {
            let shown = &progress[step.name.as_str()];
            json!({
                "name": step.name,
                "action": step.action,
                "layer": layers.get(step.name.as_str()).copied().unwrap_or(0),
                "after": step.run_after.keys().collect::<Vec<_>>(),
                "status": shown["status"].as_str().unwrap_or("waiting"),
                "attempts": shown["attempts"].as_u64().unwrap_or(0),
                "error": shown["error"],
                "compensation": shown["compensation"],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use statecast::workflow::StepDefinition;

    #[test]
    fn a_step_sits_one_layer_after_the_last_step_it_runs_after() {
        let definition = WorkflowDefinition::new("diamond")
            .step(StepDefinition::new("a", "x"))
            .step(StepDefinition::new("b", "x").after("a"))
            .step(StepDefinition::new("c", "x").after("a"))
            .step(StepDefinition::new("d", "x").after("b").after("c"));
        let progress = json!({"a": {"status": "succeeded", "attempts": 1}, "b": {"status": "running", "attempts": 2}});
        let steps = graph(&definition, &progress);
        let layer = |name: &str| steps.iter().find(|s| s["name"] == name).map(|s| s["layer"].clone());
        assert_eq!(
            [layer("a"), layer("b"), layer("c"), layer("d")],
            [Some(json!(0)), Some(json!(1)), Some(json!(1)), Some(json!(2))]
        );
        let b = steps.iter().find(|s| s["name"] == "b").expect("b");
        assert_eq!(
            (b["status"].as_str(), b["attempts"].as_u64()),
            (Some("running"), Some(2))
        );
        assert_eq!(b["after"], json!(["a"]));
        let d = steps.iter().find(|s| s["name"] == "d").expect("d");
        assert_eq!(d["status"], "waiting", "a step with no progress yet is waiting");
    }
}
