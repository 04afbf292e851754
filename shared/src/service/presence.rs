//! `presence.update`: replace a member's metadata and tell the rest of the room.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::presence::{check_presence, Member, PresenceEvent};
use crate::protocol::{RequestId, ServerMessage};
use crate::service::rooms::presence_frame;
use crate::service::MessageService;

impl MessageService {
    /// Counts against the connection's rate limit, stores the metadata with the next `rev`,
    /// and posts the `update` to every other subscriber; the reply carries the membership.
    pub(super) async fn update_presence(
        &self,
        connection: &ConnectionId,
        id: Option<RequestId>,
        actor: &str,
        presence: &Value,
    ) -> Result<ServerMessage> {
        check_presence(presence).map_err(|e| Error::TooLarge(e.to_string()))?;
        let owner = self.admit(connection).await?;
        let key = self.resolve(&owner.tenant, actor)?;
        let member = self
            .subscriptions
            .update_presence(&key, connection, &presence.to_string())
            .await?
            .ok_or_else(|| Error::NotMember(key.address()))?;
        let rooms = self.rooms();
        let room = rooms.read(&key).await?;
        let frame = presence_frame(&key, PresenceEvent::Update, connection, &member);
        let recipients = rooms.post(room.others(Some(connection)), &[frame]).await?;
        rooms.remove_all(room.expired).await;
        Ok(ServerMessage::Sent {
            id,
            actor: key.address(),
            recipients,
            member: Some(Member::from_record(connection, &member)),
        })
    }
}
