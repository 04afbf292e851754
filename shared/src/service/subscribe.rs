//! `subscribe`: store the subscription, then read the actor and answer with its state, or —
//! when the client says which version it holds (`since`) and the actor's change log still
//! covers every change after it — with just the patch it missed. With `paths`, the state is
//! the projection on them and the patch only their operations. With `presence`, the
//! connection joins the actor's presence: the room is told, and the reply lists the members.

use json_patch::Patch;
use serde_json::Value;

use crate::changelog;
use crate::delta::{serialized_len, serialized_len_exceeds};
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Epoch, Version};
use crate::presence::{check_presence, PresenceEvent};
use crate::projection::{self, Filtered};
use crate::protocol::{ProtocolError, RequestId, ServerMessage, Since};
use crate::records::{now_millis, ActorRecord, ConnectionRecord, MemberRecord, SubscriptionRecord};
use crate::service::rooms::{presence_frame, Room};
use crate::service::MessageService;

/// What a `subscribe` asks for besides the actor.
pub(super) struct Wants {
    pub since: Option<Since>,
    pub paths: Option<Vec<String>>,
    /// Join the presence with this metadata.
    pub presence: Option<Value>,
    /// List the members without joining.
    pub members: bool,
}

impl MessageService {
    /// Stores the subscription, then reads the actor: a change written after the read is
    /// fanned out to this subscription, so the client misses nothing between the two.
    pub(super) async fn subscribe(
        &self,
        owner: &ConnectionRecord,
        id: Option<RequestId>,
        actor: &str,
        wants: Wants,
    ) -> Result<ServerMessage> {
        let Wants {
            since,
            paths,
            presence,
            members,
        } = wants;
        let key = self.resolve(&owner.tenant, actor)?;
        let connection = &owner.connection_id;
        let member = match &presence {
            Some(presence) => {
                check_presence(presence).map_err(|e| Error::TooLarge(e.to_string()))?;
                Some(MemberRecord::new(owner.principal.clone(), presence, now_millis()))
            }
            None => None,
        };
        let subscription = SubscriptionRecord {
            actor_key: key.clone(),
            connection_id: connection.clone(),
            created_at: now_millis(),
            expires_at: owner.expires_at,
            paths: paths.clone(),
            member: member.clone(),
        };
        let replaced = self.subscriptions.put_subscription(&subscription).await?;
        // The room is read after the subscription is stored, as the actor is: a member that
        // joins later finds this connection in its room and tells it.
        let (stored, room) = match member.is_some() || replaced.is_some() || members {
            true => {
                let (stored, room) = futures::future::try_join(self.actors.load(&key), self.rooms().read(&key)).await?;
                (stored, Some(room))
            }
            false => (self.actors.load(&key).await?, None),
        };
        let (epoch, version) = stored
            .as_ref()
            .map_or((Epoch(0), Version::NONE), |r| (r.epoch, r.version));
        if let Some(since) = since.filter(|s| s.epoch == epoch && s.version > version) {
            // Nothing may stay stored for a refused request (a membership it replaced has ended).
            self.subscriptions.delete_subscription(&key, connection).await?;
            if let Some(old) = &replaced {
                self.rooms()
                    .announce(&key, PresenceEvent::Leave, connection, old, None)
                    .await?;
            }
            return Err(Error::Protocol(ProtocolError::InvalidFields {
                action: "subscribe".into(),
                detail: format!(
                    "`since.version` {} is ahead of the actor's version {version}",
                    since.version
                ),
            }));
        }
        if let Some(room) = &room {
            self.tell_room(room, &key, connection, replaced.as_ref(), member.as_ref())
                .await?;
        }
        let listed = room.filter(|_| member.is_some() || members).map(|r| r.members());
        let member_id = member.map(|m| m.id);
        let reply = |state, resumed, from, patch| ServerMessage::Subscribed {
            id: id.clone(),
            actor: key.address(),
            epoch,
            version,
            state,
            resumed,
            from,
            patch,
            members: listed.clone(),
            member_id: member_id.clone(),
        };
        if let Some(since) = since {
            if let Some(patch) = self.missed(stored.as_ref(), since, paths.as_deref()) {
                return Ok(reply(None, Some(true), Some(since.version), Some(patch)));
            }
        }
        let state = match stored {
            Some(record) => record.state,
            None => self.default_state(&key)?,
        };
        let state = match &paths {
            Some(paths) => projection::project(&state, paths),
            None => state,
        };
        Ok(reply(Some(state), since.map(|_| false), None, None))
    }

    /// The patch from the client's `since` to the stored version (its operations under
    /// `paths`), when the same history still holds every change in between and the patch is
    /// smaller than the (projected) state.
    fn missed(&self, stored: Option<&ActorRecord>, since: Since, paths: Option<&[String]>) -> Option<Patch> {
        let Some(record) = stored else {
            // Not stored (yet, or any more): only "nothing happened since version 0" resumes.
            return (since
                == Since {
                    epoch: Epoch(0),
                    version: Version::NONE,
                })
            .then(|| Patch(vec![]));
        };
        if since.epoch != record.epoch {
            return None;
        }
        let retention = self.settings.change_log.retention;
        let patch = changelog::patch_between(&record.log, since.version, record.version, now_millis(), retention)?;
        let Some(paths) = paths else {
            return serialized_len_exceeds(&record.state, serialized_len(&patch)).then_some(patch);
        };
        let patch = match projection::filter(&patch, paths, &record.state) {
            Filtered::Nothing => Patch(Vec::new()),
            Filtered::Patch(patch) => patch,
            Filtered::Snapshot => return None,
        };
        let projected = projection::project(&record.state, paths);
        (patch.0.is_empty() || serialized_len_exceeds(&projected, serialized_len(&patch))).then_some(patch)
    }

    /// Tells everyone else in `room` that this connection's old membership ended and its new
    /// one began (in that order).
    async fn tell_room(
        &self,
        room: &Room,
        key: &ActorKey,
        connection: &crate::ids::ConnectionId,
        replaced: Option<&MemberRecord>,
        joined: Option<&MemberRecord>,
    ) -> Result<()> {
        let frames: Vec<String> = [(PresenceEvent::Leave, replaced), (PresenceEvent::Join, joined)]
            .into_iter()
            .filter_map(|(event, member)| Some(presence_frame(key, event, connection, member?)))
            .collect();
        let rooms = self.rooms();
        if !frames.is_empty() {
            rooms.post(room.others(Some(connection)), &frames).await?;
        }
        rooms.remove_all(room.expired.clone()).await;
        Ok(())
    }

    fn default_state(&self, key: &ActorKey) -> Result<serde_json::Value> {
        Ok(self.actor_type(key)?.default_state())
    }
}
