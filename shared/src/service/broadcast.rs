//! `broadcast`: an ephemeral message posted straight to an actor's subscribers — one
//! subscriber Query and one post each, no write, no stream record.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::presence::check_payload;
use crate::protocol::{RequestId, ServerMessage};
use crate::service::MessageService;

/// A client's `broadcast`, as parsed.
pub(super) struct Broadcast {
    pub actor: String,
    pub event: String,
    pub payload: Value,
    pub exclude_self: bool,
}

impl MessageService {
    /// Refuses a sender that is not subscribed to the actor (`forbidden`), so a client cannot
    /// post into rooms it is not in; counts against the connection's rate limit.
    pub(super) async fn broadcast(
        &self,
        connection: &ConnectionId,
        id: Option<RequestId>,
        broadcast: Broadcast,
    ) -> Result<ServerMessage> {
        check_payload(&broadcast.payload).map_err(|e| Error::TooLarge(e.to_string()))?;
        let owner = self.admit(connection).await?;
        let key = self.resolve(&owner.tenant, &broadcast.actor)?;
        let rooms = self.rooms();
        let room = rooms.read(&key).await?;
        if !room.contains(connection) {
            return Err(Error::NotSubscribed(key.address()));
        }
        let frame = ServerMessage::Broadcast {
            actor: key.address(),
            event: broadcast.event,
            payload: broadcast.payload,
            from: connection.as_str().to_owned(),
        }
        .to_frame()
        .map_err(|e| Error::TooLarge(e.to_string()))?;
        let except = broadcast.exclude_self.then_some(connection);
        let recipients = rooms.post(room.others(except), &[frame]).await?;
        rooms.remove_all(room.expired).await;
        Ok(ServerMessage::Sent {
            id,
            actor: key.address(),
            recipients,
            member: None,
        })
    }
}
