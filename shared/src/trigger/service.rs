//! The triggers of an application, armed with their secrets, and what firing one does: build
//! the target from the event, then call the actor (once per delivery, through the calls'
//! idempotency keys) or start the workflow (once per delivery, through its start id).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::definition::{Secret, Source, Target, Trigger, Verification};
use super::template::{resolve, Unresolved};
use super::validate::TriggerError;
use crate::application::{Application, Services};
use crate::error::Error;
use crate::ids::{TenantId, Version};
use crate::service::{MessageService, Once};
use crate::workflow::WorkflowService;

/// A trigger ready to fire: its tenant parsed, its secret read.
#[derive(Debug)]
pub struct Armed {
    pub trigger: Trigger,
    pub tenant: TenantId,
    pub target: Target,
    /// The HMAC secret or bearer token of a webhook that has one.
    pub(super) secret: Option<Vec<u8>>,
}

/// What a fired trigger did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    Called {
        value: Value,
        version: Version,
    },
    Started {
        workflow_id: String,
        actor: String,
        created: bool,
    },
}

impl Fired {
    pub fn to_json(&self) -> Value {
        match self {
            Fired::Called { value, version } => json!({"value": value, "version": version}),
            Fired::Started {
                workflow_id,
                actor,
                created,
            } => json!({"workflowId": workflow_id, "actor": actor, "created": created}),
        }
    }
}

/// Why firing failed.
#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error("no {kind} trigger {name:?}")]
    UnknownTrigger { kind: &'static str, name: String },
    #[error(transparent)]
    Template(#[from] Unresolved),
    #[error("the target actor's id must resolve to a string, not {0}")]
    IdNotAString(String),
    #[error(transparent)]
    Service(#[from] Error),
}

/// One delivery of an event, identified by its sender: a repeat is a no-op, a repeat with
/// other content (`digest`) a conflict.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub digest: String,
}

impl Delivery {
    /// The delivery `id` of `content`.
    pub fn new(id: impl Into<String>, content: &[u8]) -> Self {
        Self {
            id: id.into(),
            digest: hex_digest(content),
        }
    }
}

pub struct TriggerService {
    triggers: BTreeMap<String, Armed>,
    calls: MessageService,
    workflows: Arc<WorkflowService>,
}

impl TriggerService {
    /// Arms the triggers of `app` (validated when they were declared), reading each secret
    /// with `secrets` (an environment lookup in deployments); every missing secret is listed.
    pub fn new(
        app: &Application,
        services: &Services,
        secrets: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TriggerError> {
        let mut triggers = BTreeMap::new();
        let mut problems = Vec::new();
        for trigger in app.trigger_list() {
            let secret = match trigger.webhook_settings().map(|h| &h.verification) {
                Some(Verification::Hmac { secret, .. }) | Some(Verification::Bearer { token: secret }) => {
                    match read(secret, &secrets) {
                        Ok(bytes) => Some(bytes),
                        Err(problem) => {
                            problems.push(format!("trigger {:?}: {problem}", trigger.name));
                            None
                        }
                    }
                }
                _ => None,
            };
            let tenant = TenantId::new(trigger.tenant.clone().unwrap_or_default());
            match (tenant, trigger.target.clone()) {
                (Ok(tenant), Some(target)) => {
                    let armed = Armed {
                        trigger: trigger.clone(),
                        tenant,
                        target,
                        secret,
                    };
                    triggers.insert(trigger.name.clone(), armed);
                }
                (Err(e), _) => problems.push(format!("trigger {:?}: {e}", trigger.name)),
                (_, None) => problems.push(format!("trigger {:?}: no target", trigger.name)),
            }
        }
        if !problems.is_empty() {
            return Err(TriggerError { problems });
        }
        Ok(Self {
            triggers,
            calls: services.message(),
            workflows: services.workflow(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Armed> {
        self.triggers.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Armed> {
        self.triggers.values()
    }

    /// The queue trigger reading `queue`.
    pub fn for_queue(&self, queue: &str) -> Option<&Armed> {
        self.all()
            .find(|a| matches!(&a.trigger.source, Source::Queue { queue: q } if q == queue))
    }

    /// Runs `armed`'s target on `event`, once per `delivery` when given.
    pub async fn fire(&self, armed: &Armed, event: &Value, delivery: Option<&Delivery>) -> Result<Fired, FireError> {
        let name = &armed.trigger.name;
        match &armed.target {
            Target::Call {
                actor_type,
                id,
                method,
                args,
            } => {
                let actor = match resolve(id, event)? {
                    Value::String(id) => format!("{actor_type}/{id}"),
                    Value::Number(id) => format!("{actor_type}/{id}"),
                    other => return Err(FireError::IdNotAString(other.to_string())),
                };
                let args = resolve(args, event)?;
                let once = delivery.map(|d| Once {
                    key: format!("trigger:{name}:{}", d.id),
                    digest: d.digest.clone(),
                });
                let (value, version) = self.calls.call_as(&armed.tenant, &actor, method, args, once).await?;
                Ok(Fired::Called { value, version })
            }
            Target::StartWorkflow { workflow, input } => {
                let input = resolve(input, event)?;
                let id = delivery.map(|d| format!("{name}-{}", &hex_digest(d.id.as_bytes())[..32]));
                let started = self.workflows.start(&armed.tenant, workflow, &input, id).await?;
                if !started.created {
                    self.check_same_input(armed, &started.workflow_id, &input).await?;
                }
                Ok(Fired::Started {
                    workflow_id: started.workflow_id,
                    actor: started.progress.address(),
                    created: started.created,
                })
            }
        }
    }

    /// A redelivered start must carry the input of the first.
    async fn check_same_input(&self, armed: &Armed, workflow_id: &str, input: &Value) -> Result<(), Error> {
        let instance = self.workflows.instance_of(&armed.tenant, workflow_id).await?;
        let first: Value = serde_json::from_str(&instance.input).map_err(|e| Error::Corrupt {
            what: "workflow input",
            detail: e.to_string(),
        })?;
        if &first != input {
            return Err(Error::KeyReused {
                key: workflow_id.to_owned(),
                first: format!("a start of {} with other input", instance.workflow),
            });
        }
        Ok(())
    }
}

fn read(secret: &Secret, lookup: &impl Fn(&str) -> Option<String>) -> Result<Vec<u8>, String> {
    let value = match secret {
        Secret::Value(value) => Some(value.clone()),
        Secret::Env(name) => lookup(name),
    };
    match value {
        Some(value) if !value.is_empty() => Ok(value.into_bytes()),
        _ => Err(match secret {
            Secret::Env(name) => format!("its secret {name} is not set"),
            Secret::Value(_) => "its secret is empty".to_owned(),
        }),
    }
}

pub(super) fn hex_digest(content: &[u8]) -> String {
    Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect()
}
