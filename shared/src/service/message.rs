//! `$default`: one client frame in, one reply frame out.

use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use crate::actor::ActorRegistry;
use crate::application::Stores;
use crate::error::{Error, Result};
use crate::ids::{ActorAddress, ActorKey, ConnectionId, TenantId, Version};
use crate::ports::{ActorStore, ConnectionSender, ConnectionStore, SubscriptionStore};
use crate::presence::PresenceEvent;
use crate::protocol::{parse_client_message, ClientMessage, ErrorCode, ServerMessage};
use crate::records::{now_millis, ConnectionRecord};
use crate::service::broadcast::Broadcast;
use crate::service::key_lock::KeyLocks;
use crate::service::posting::{PostLimits, Poster};
use crate::service::rooms::Rooms;
use crate::service::subscribe::Wants;
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
    /// Posts the parts of a reply over the message limit (`@connections`).
    pub(super) sender: Option<Arc<dyn ConnectionSender>>,
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
            sender: None,
        }
    }

    /// Sends replies over the message limit in parts through `sender`; without one they
    /// are answered with `too_large`.
    pub fn with_sender(mut self, sender: Arc<dyn ConnectionSender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// Handles one frame from `connection` and returns the reply frame (the route
    /// response). Never fails: every problem becomes an `error` reply carrying the client's
    /// request id (and `request_id`, the Lambda's, when internal). A reply over the message
    /// limit is posted in parts instead (and `None` returned), or becomes `too_large` when
    /// there is no sender.
    pub async fn handle_frame(&self, connection: &ConnectionId, body: &str, request_id: &str) -> Option<String> {
        let reply = self.handle(connection, body, request_id).await;
        let mut frames = reply.to_frames();
        let sender = match &self.sender {
            _ if frames.len() == 1 => return frames.pop(),
            None => return Some(reply.to_reply_frame()),
            Some(sender) => sender,
        };
        // One connection through the poster: a throttled or failed part is tried again, from
        // that part, after a back-off (the `@connections` client itself does not retry).
        let limits = PostLimits {
            initial: 1,
            max: 1,
            ..PostLimits::default()
        };
        let parts = vec![(connection.clone(), Arc::new(frames))];
        let posted = Poster::new(sender.clone(), limits).post(parts).await;
        if posted.delivered == 1 || !posted.gone.is_empty() {
            return None;
        }
        warn!(%connection, "could not post a reply's parts");
        let failed = Error::Dependency {
            operation: "PostToConnection",
            retryable: true,
            source: "the reply's parts could not be posted".into(),
        };
        Some(
            failed
                .to_reply(reply.request_id().cloned(), request_id)
                .to_reply_frame(),
        )
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
        let call = matches!(message, ClientMessage::Call { .. }).then(std::time::Instant::now);
        let result = self.dispatch(connection, message).await;
        if let Some(started) = call {
            self.record_call(started, &result);
        }
        match result {
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
            ClientMessage::Subscribe {
                id,
                actor,
                since,
                paths,
                presence,
                members,
            } => {
                // A join is a presence change: it counts against the connection's rate limit.
                let owner = match &presence {
                    Some(_) => self.admit(connection).await?,
                    None => owner().await?,
                };
                let wants = Wants {
                    since,
                    paths,
                    presence,
                    members: members.unwrap_or(false),
                };
                self.subscribe(&owner, id, &actor, wants).await
            }
            ClientMessage::Unsubscribe { id, actor } => {
                let key = self.resolve(&owner().await?.tenant, &actor)?;
                if let Some(member) = self.subscriptions.delete_subscription(&key, connection).await? {
                    self.rooms()
                        .announce(&key, PresenceEvent::Leave, connection, &member, None)
                        .await?;
                }
                Ok(ServerMessage::Unsubscribed {
                    id,
                    actor: key.address(),
                })
            }
            ClientMessage::PresenceUpdate { id, actor, presence } => {
                self.update_presence(connection, id, &actor, &presence).await
            }
            ClientMessage::Broadcast {
                id,
                actor,
                event,
                payload,
                exclude_self,
            } => {
                let broadcast = Broadcast {
                    actor,
                    event,
                    payload,
                    exclude_self,
                };
                self.broadcast(connection, id, broadcast).await
            }
            ClientMessage::Call {
                id,
                actor,
                method,
                args,
                idempotency_key,
            } => {
                let key = self.resolve(&owner().await?.tenant, &actor)?;
                let (value, version) = match idempotency_key {
                    Some(idempotency_key) => self.call_once(&key, &method, args, &idempotency_key).await?,
                    None => self.call(&key, &method, args, None).await?,
                };
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

    /// Resolves a client's actor name within its tenant and checks the type exists.
    pub(super) fn resolve(&self, tenant: &TenantId, actor: &str) -> Result<ActorKey> {
        let key = ActorAddress::parse(actor)?.resolve(tenant)?;
        self.actor_type(&key)?;
        Ok(key)
    }

    /// The connection, after counting one broadcast or presence change against its limit.
    pub(super) async fn admit(&self, connection: &ConnectionId) -> Result<ConnectionRecord> {
        self.connections
            .admit(connection, &self.settings.broadcast_rate, now_millis())
            .await
    }

    /// The rooms of this service's actors, posting through its sender.
    pub(super) fn rooms(&self) -> Rooms {
        Rooms::new(
            self.subscriptions.clone(),
            self.connections.clone(),
            self.sender.clone(),
            self.settings.send_concurrency,
        )
    }

    pub(super) fn actor_type(&self, key: &ActorKey) -> Result<&dyn crate::actor::DynActor> {
        self.registry
            .get(key.actor_type())
            .ok_or_else(|| Error::UnknownActorType(key.actor_type().to_owned()))
    }
}
