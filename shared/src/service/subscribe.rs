//! `subscribe`: store the subscription, then read the actor and answer with its state, or —
//! when the client says which version it holds (`since`) and the actor's change log still
//! covers every change after it — with just the patch it missed. With `paths`, the state is
//! the projection on them and the patch only their operations.

use json_patch::Patch;

use crate::changelog;
use crate::delta::{serialized_len, serialized_len_exceeds};
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Epoch, Version};
use crate::projection::{self, Filtered};
use crate::protocol::{ProtocolError, RequestId, ServerMessage, Since};
use crate::records::{now_millis, ActorRecord, ConnectionRecord, SubscriptionRecord};
use crate::service::MessageService;

impl MessageService {
    /// Stores the subscription, then reads the actor: a change written after the read is
    /// fanned out to this subscription, so the client misses nothing between the two.
    pub(super) async fn subscribe(
        &self,
        owner: &ConnectionRecord,
        id: Option<RequestId>,
        actor: &str,
        since: Option<Since>,
        paths: Option<Vec<String>>,
    ) -> Result<ServerMessage> {
        let key = self.resolve(&owner.tenant, actor)?;
        let subscription = SubscriptionRecord {
            actor_key: key.clone(),
            connection_id: owner.connection_id.clone(),
            created_at: now_millis(),
            expires_at: owner.expires_at,
            paths: paths.clone(),
        };
        self.subscriptions.put_subscription(&subscription).await?;
        let stored = self.actors.load(&key).await?;
        let (epoch, version) = stored
            .as_ref()
            .map_or((Epoch(0), Version::NONE), |r| (r.epoch, r.version));
        if let Some(since) = since.filter(|s| s.epoch == epoch && s.version > version) {
            // Nothing may stay stored for a refused request.
            self.subscriptions
                .delete_subscription(&key, &owner.connection_id)
                .await?;
            return Err(Error::Protocol(ProtocolError::InvalidFields {
                action: "subscribe".into(),
                detail: format!(
                    "`since.version` {} is ahead of the actor's version {version}",
                    since.version
                ),
            }));
        }
        let reply = |state, resumed, from, patch| ServerMessage::Subscribed {
            id: id.clone(),
            actor: key.address(),
            epoch,
            version,
            state,
            resumed,
            from,
            patch,
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

    fn default_state(&self, key: &ActorKey) -> Result<serde_json::Value> {
        Ok(self.actor_type(key)?.default_state())
    }
}
