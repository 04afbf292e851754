//! `$default`: one client frame in, one reply frame out.

use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use crate::actor::ActorRegistry;
use crate::application::Stores;
use crate::error::{Error, Result};
use crate::ids::{ActorAddress, ActorKey, ConnectionId, TenantId, Version};
use crate::ports::{ActorStore, ConnectionStore, SubscriptionStore};
use crate::protocol::{parse_client_message, ClientMessage, ErrorCode, RequestId, ServerMessage};
use crate::records::{now_millis, ConnectionRecord, SubscriptionRecord};
use crate::service::key_lock::KeyLocks;
use crate::service::Settings;
use crate::workflow::WorkflowService;

pub struct MessageService {
    pub(super) connections: Arc<dyn ConnectionStore>,
    pub(super) subscriptions: Arc<dyn SubscriptionStore>,
    pub(super) actors: Arc<dyn ActorStore>,
    pub(super) registry: Arc<ActorRegistry>,
    pub(super) settings: Settings,
    pub(super) workflows: Arc<WorkflowService>,
    /// Calls to one actor take turns within this process.
    pub(super) turns: Arc<KeyLocks>,
}

impl MessageService {
    /// Built by [`crate::application::Services::message`].
    pub fn new(
        stores: Stores,
        registry: Arc<ActorRegistry>,
        workflows: Arc<WorkflowService>,
        settings: Settings,
    ) -> Self {
        Self {
            connections: stores.connections,
            subscriptions: stores.subscriptions,
            actors: stores.actors,
            registry,
            settings,
            workflows,
            turns: Arc::default(),
        }
    }

    /// Handles one frame from `connection` and returns the reply frame. Never fails: every
    /// problem becomes an `error` reply carrying the client's request id (and `request_id`,
    /// the Lambda's, when internal); a reply over the message limit becomes `too_large`.
    pub async fn handle_frame(&self, connection: &ConnectionId, body: &str, request_id: &str) -> String {
        self.handle(connection, body, request_id).await.to_reply_frame()
    }

    /// [`Self::handle_frame`] before encoding.
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
                if error.code() == ErrorCode::Internal {
                    warn!(%connection, error = %crate::error::chain(&error), "request failed");
                }
                error.to_reply(id, request_id)
            }
        }
    }

    /// Answers one message. Every message but `ping` first looks up the connection's tenant.
    async fn dispatch(&self, connection: &ConnectionId, message: ClientMessage) -> Result<ServerMessage> {
        let owner = || async {
            self.connections
                .get_connection(connection)
                .await?
                .ok_or(Error::UnknownConnection)
        };
        match message {
            ClientMessage::Ping { id } => Ok(ServerMessage::Pong { id }),
            ClientMessage::Subscribe { id, actor, since: _ } => self.subscribe(&owner().await?, id, &actor).await,
            ClientMessage::Unsubscribe { id, actor } => {
                let key = self.resolve(&owner().await?.tenant, &actor)?;
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
                let key = self.resolve(&owner().await?.tenant, &actor)?;
                let (value, version) = self.call(&key, &method, args).await?;
                Ok(ServerMessage::Result { id, value, version })
            }
            ClientMessage::WorkflowStart {
                id,
                workflow,
                input,
                workflow_id,
            } => {
                let started = self
                    .workflows
                    .start(&owner().await?.tenant, &workflow, &input, workflow_id)
                    .await?;
                // The progress actor's version: 1 for a new instance, its current one for a
                // repeated start (a subscriber resumes from there).
                let version = match started.created {
                    true => Version(1),
                    false => self
                        .actors
                        .load(&started.progress)
                        .await?
                        .map_or(Version(1), |r| r.version),
                };
                Ok(ServerMessage::Result {
                    id,
                    value: json!({
                        "workflowId": started.workflow_id,
                        "actor": started.progress.address(),
                        "created": started.created,
                    }),
                    version,
                })
            }
            ClientMessage::WorkflowCancel { id, workflow_id } => {
                let status = self.workflows.cancel(&owner().await?.tenant, &workflow_id).await?;
                Ok(ServerMessage::Result {
                    id,
                    value: json!({"workflowId": workflow_id, "status": status.as_str()}),
                    version: Version::NONE,
                })
            }
            ClientMessage::WorkflowStatus { id, workflow_id } => {
                let instance = self.workflows.instance_of(&owner().await?.tenant, &workflow_id).await?;
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
