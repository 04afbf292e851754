//! `$default`: one client frame in, one reply frame out.

use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use crate::actor::ActorRegistry;
use crate::error::{Error, Result};
use crate::ids::{ActorAddress, ActorKey, ConnectionId, TenantId, Version};
use crate::ports::{ActorStore, ConnectionStore, SubscriptionStore};
use crate::protocol::{parse_client_message, ClientMessage, RequestId, ServerMessage};
use crate::records::{now_millis, ConnectionRecord, SubscriptionRecord};
use crate::service::Settings;
use crate::workflow::WorkflowService;

pub struct MessageService {
    pub(super) connections: Arc<dyn ConnectionStore>,
    pub(super) subscriptions: Arc<dyn SubscriptionStore>,
    pub(super) actors: Arc<dyn ActorStore>,
    pub(super) registry: Arc<ActorRegistry>,
    pub(super) settings: Settings,
    pub(super) workflows: Option<Arc<WorkflowService>>,
}

impl MessageService {
    pub fn new(
        connections: Arc<dyn ConnectionStore>,
        subscriptions: Arc<dyn SubscriptionStore>,
        actors: Arc<dyn ActorStore>,
        registry: Arc<ActorRegistry>,
        settings: Settings,
    ) -> Self {
        Self {
            connections,
            subscriptions,
            actors,
            registry,
            settings,
            workflows: None,
        }
    }

    /// Serves `workflow.*` messages (and workflow starts from actor methods) with `workflows`.
    pub fn with_workflows(mut self, workflows: Arc<WorkflowService>) -> Self {
        self.workflows = Some(workflows);
        self
    }

    /// Handles one frame from `connection`. Never fails: every problem becomes an `error`
    /// reply carrying the client's request id (and `request_id`, the Lambda's, when internal).
    pub async fn handle(&self, connection: &ConnectionId, body: &str, request_id: &str) -> ServerMessage {
        let message = match parse_client_message(body) {
            Ok(message) => message,
            Err((id, problem)) => {
                info!(%connection, %problem, "refused a malformed frame");
                return Error::from(problem).to_reply(id, request_id);
            }
        };
        let id = message.id().cloned();
        match self.dispatch(connection, message).await {
            Ok(reply) => reply,
            Err(error) => {
                if error.code() == crate::protocol::ErrorCode::Internal {
                    warn!(%connection, error = %crate::error::chain(&error), "request failed");
                }
                error.to_reply(id, request_id)
            }
        }
    }

    async fn dispatch(&self, connection: &ConnectionId, message: ClientMessage) -> Result<ServerMessage> {
        if let ClientMessage::Ping { id } = message {
            return Ok(ServerMessage::Pong { id });
        }
        let owner = self
            .connections
            .get_connection(connection)
            .await?
            .ok_or(Error::UnknownConnection)?;
        match message {
            ClientMessage::Subscribe { id, actor, since: _ } => self.subscribe(&owner, id, &actor).await,
            ClientMessage::Unsubscribe { id, actor } => {
                let key = self.resolve(&owner.tenant, &actor)?;
                self.subscriptions.delete_subscription(&key, connection).await?;
                Ok(ServerMessage::Unsubscribed {
                    id,
                    actor: key.address(),
                })
            }
            ClientMessage::Call {
                id,
                actor,
                method,
                args,
            } => {
                let key = self.resolve(&owner.tenant, &actor)?;
                let (value, version) = self.call(&key, &method, args).await?;
                Ok(ServerMessage::Result { id, value, version })
            }
            ClientMessage::Ping { id } => Ok(ServerMessage::Pong { id }),
            ClientMessage::WorkflowStart {
                id,
                workflow,
                input,
                workflow_id,
            } => {
                let started = self
                    .workflows()?
                    .start(&owner.tenant, &workflow, &input, workflow_id)
                    .await?;
                Ok(ServerMessage::Result {
                    id,
                    value: json!({
                        "workflowId": started.workflow_id,
                        "actor": started.progress.address(),
                        "created": started.created,
                    }),
                    version: Version(1),
                })
            }
            ClientMessage::WorkflowCancel { id, workflow_id } => {
                let status = self.workflows()?.cancel(&owner.tenant, &workflow_id).await?;
                Ok(ServerMessage::Result {
                    id,
                    value: json!({"workflowId": workflow_id, "status": status.as_str()}),
                    version: Version::NONE,
                })
            }
            ClientMessage::WorkflowStatus { id, workflow_id } => {
                let instance = self.workflows()?.instance_of(&owner.tenant, &workflow_id).await?;
                let record = self
                    .actors
                    .load(&instance.progress)
                    .await?
                    .ok_or_else(|| Error::WorkflowNotFound(workflow_id.clone()))?;
                Ok(ServerMessage::Result {
                    id,
                    value: record.state,
                    version: record.version,
                })
            }
        }
    }

    pub(super) fn workflows(&self) -> Result<&WorkflowService> {
        self.workflows.as_deref().ok_or(Error::WorkflowsDisabled)
    }

    /// Stores the subscription, then reads the actor: a change written after the read is
    /// fanned out to this subscription, so the client misses nothing between the two.
    async fn subscribe(&self, owner: &ConnectionRecord, id: Option<RequestId>, actor: &str) -> Result<ServerMessage> {
        let key = self.resolve(&owner.tenant, actor)?;
        let subscription = SubscriptionRecord {
            actor_key: key.clone(),
            connection_id: owner.connection_id.clone(),
            created_at: now_millis(),
            expires_at: owner.expires_at,
        };
        self.subscriptions.put_subscription(&subscription).await?;
        let (epoch, version, state) = match self.actors.load(&key).await? {
            Some(record) => (record.epoch, record.version, record.state),
            None => (
                Default::default(),
                Default::default(),
                self.actor_type(&key)?.default_state(),
            ),
        };
        Ok(ServerMessage::Subscribed {
            id,
            actor: key.address(),
            epoch,
            version,
            state,
        })
    }

    /// Resolves a client's actor name within its tenant and checks the type exists.
    fn resolve(&self, tenant: &TenantId, actor: &str) -> Result<ActorKey> {
        let key = ActorAddress::parse(actor)?.resolve(tenant)?;
        self.actor_type(&key)?;
        Ok(key)
    }

    pub(super) fn actor_type(&self, key: &ActorKey) -> Result<&dyn crate::actor::DynActor> {
        self.registry
            .get(key.actor_type())
            .ok_or_else(|| Error::UnknownActorType(key.actor_type().to_owned()))
    }
}
