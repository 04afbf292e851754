//! An actor's room: its subscribers, read page by page, and the ephemeral frames (presence
//! changes, broadcasts) posted straight to them without a stream hop. Owns the removal of
//! connections a post found gone (410), which tells the rooms they were members of.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::{debug, warn};

use crate::error::{chain, Error, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{ConnectionSender, ConnectionStore, Held, SubscriptionStore};
use crate::presence::{Member, PresenceEvent};
use crate::protocol::ServerMessage;
use crate::records::MemberRecord;
use crate::service::posting::{PostLimits, Poster};

/// Gone connections one clean-up follows (each may reveal more through its leave posts).
const MAX_GONE_PER_CLEANUP: usize = 256;

/// Everyone subscribed to one actor, read strongly consistently.
#[derive(Debug, Default)]
pub(crate) struct Room {
    pub subscribers: Vec<ConnectionId>,
    pub members: Vec<(ConnectionId, MemberRecord)>,
    /// Subscriptions past their TTL: their connections are gone (see [`Rooms::remove_all`]).
    pub expired: Vec<ConnectionId>,
}

impl Room {
    pub fn contains(&self, connection: &ConnectionId) -> bool {
        self.subscribers.contains(connection)
    }

    /// The members as clients see them.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|(connection, record)| Member::from_record(connection, record))
            .collect()
    }

    /// Every subscriber but `except`.
    pub fn others(&self, except: Option<&ConnectionId>) -> Vec<ConnectionId> {
        self.subscribers
            .iter()
            .filter(|c| Some(*c) != except)
            .cloned()
            .collect()
    }
}

/// Reads rooms and posts to them.
#[derive(Clone)]
pub(crate) struct Rooms {
    subscriptions: Arc<dyn SubscriptionStore>,
    connections: Arc<dyn ConnectionStore>,
    /// `@connections`; without one nothing is posted (leaves are then learnt from TTL).
    sender: Option<Arc<dyn ConnectionSender>>,
    concurrency: usize,
}

impl Rooms {
    pub fn new(
        subscriptions: Arc<dyn SubscriptionStore>,
        connections: Arc<dyn ConnectionStore>,
        sender: Option<Arc<dyn ConnectionSender>>,
        concurrency: usize,
    ) -> Self {
        Self {
            subscriptions,
            connections,
            sender,
            concurrency: concurrency.max(1),
        }
    }

    /// Every subscriber of `key` (all pages).
    pub async fn read(&self, key: &ActorKey) -> Result<Room> {
        let mut room = Room::default();
        let mut after = None;
        loop {
            let page = self.subscriptions.subscribers(key, after.as_ref()).await?;
            room.subscribers.extend(page.connections);
            room.members.extend(page.members);
            room.expired.extend(page.expired);
            after = page.next;
            if after.is_none() {
                return Ok(room);
            }
        }
    }

    /// Posts `frames`, in order, to each of `to`; returns how many got them all. Connections
    /// found gone are removed (see [`Rooms::remove`]) before this returns.
    pub async fn post(&self, to: Vec<ConnectionId>, frames: &[String]) -> Result<usize> {
        let (delivered, gone) = self.post_collecting(to, frames).await?;
        self.remove_all(gone).await;
        Ok(delivered)
    }

    /// [`Rooms::remove`] for connections nobody waits on: failures are logged.
    pub async fn remove_all(&self, gone: Vec<ConnectionId>) {
        if gone.is_empty() {
            return;
        }
        let first = gone[0].clone();
        if let Err(e) = self.remove(gone, None).await {
            warn!(connection = %first, error = %chain(&e), "could not clean up a gone connection; TTL will");
        }
    }

    /// Tells `key`'s room (but `except`) that `member` (of `connection`) joined, changed or left.
    pub async fn announce(
        &self,
        key: &ActorKey,
        event: PresenceEvent,
        connection: &ConnectionId,
        member: &MemberRecord,
        except: Option<&ConnectionId>,
    ) -> Result<usize> {
        let room = self.read(key).await?;
        let delivered = self
            .post(room.others(except), &[presence_frame(key, event, connection, member)])
            .await?;
        self.remove_all(room.expired).await;
        Ok(delivered)
    }

    /// Removes connections that are gone (`$disconnect`, or a post answered 410): each one's
    /// subscriptions, telling the rooms it was a member of that it left, then its record.
    /// `known` is a subscription of the first connection the caller knows of (the index may
    /// not have it yet). Connections those leave posts find gone are removed too, up to a
    /// bound (their failures are logged). Returns how many subscriptions the first
    /// connection held, or why its clean-up failed.
    pub async fn remove(&self, gone: Vec<ConnectionId>, known: Option<&ActorKey>) -> Result<usize> {
        let mut queue: Vec<ConnectionId> = gone;
        queue.reverse();
        let mut seen: HashSet<ConnectionId> = queue.iter().cloned().collect();
        let mut first: Option<Result<usize>> = None;
        let mut known = known.cloned();
        while let Some(connection) = queue.pop() {
            let (held, more) = match self.remove_one(&connection, known.take()).await {
                Ok((held, more)) => (Ok(held), more),
                Err(e) => (Err(e), Vec::new()),
            };
            match (&first, held) {
                (None, held) => first = Some(held),
                (Some(_), Err(e)) => {
                    warn!(%connection, error = %chain(&e), "could not clean up a gone connection; TTL will")
                }
                (Some(_), Ok(_)) => {}
            }
            for next in more {
                if seen.len() >= MAX_GONE_PER_CLEANUP {
                    warn!("more gone connections than one clean-up follows; the next posts will find them");
                    break;
                }
                if seen.insert(next.clone()) {
                    queue.push(next);
                }
            }
        }
        first.unwrap_or(Ok(0))
    }

    /// One connection's clean-up; returns how many subscriptions it held and the connections
    /// its leave posts found gone.
    async fn remove_one(
        &self,
        connection: &ConnectionId,
        known: Option<ActorKey>,
    ) -> Result<(usize, Vec<ConnectionId>)> {
        let mut held = self.subscriptions.subscriptions_of(connection).await?;
        let known = match known {
            Some(actor) => {
                held.retain(|h| h.actor != actor);
                let member = self.subscriptions.delete_subscription(&actor, connection).await?;
                Some(Held {
                    actor,
                    shard: 0,
                    member,
                })
            }
            None => None,
        };
        self.subscriptions.delete_subscriptions(connection, &held).await?;
        self.connections.delete_connection(connection).await?;
        held.extend(known);
        let mut more = Vec::new();
        if self.sender.is_none() {
            debug!(%connection, "no @connections endpoint: its rooms are not told it left");
            return Ok((held.len(), more));
        }
        for Held { actor, member, .. } in &held {
            let Some(member) = member else { continue };
            let room = self.read(actor).await?;
            let frame = presence_frame(actor, PresenceEvent::Leave, connection, member);
            let (_, gone) = self.post_collecting(room.subscribers, &[frame]).await?;
            more.extend(gone);
            more.extend(room.expired);
        }
        debug!(%connection, subscriptions = held.len(), "removed a connection");
        Ok((held.len(), more))
    }

    /// Posts without cleaning up: how many got every frame, and who was gone.
    async fn post_collecting(&self, to: Vec<ConnectionId>, frames: &[String]) -> Result<(usize, Vec<ConnectionId>)> {
        if to.is_empty() {
            return Ok((0, Vec::new()));
        }
        let Some(sender) = &self.sender else {
            return Err(Error::Dependency {
                operation: "PostToConnection",
                retryable: false,
                source: "no @connections endpoint is configured (CONNECTIONS_ENDPOINT)".into(),
            });
        };
        let limits = PostLimits {
            initial: self.concurrency,
            max: self.concurrency * 8,
            ..PostLimits::default()
        };
        let frames = Arc::new(frames.to_vec());
        let targets = to.into_iter().map(|to| (to, frames.clone())).collect();
        let posted = Poster::new(sender.clone(), limits).post(targets).await;
        Ok((posted.delivered, posted.gone))
    }
}

/// The `presence` frame for one member's change.
pub(crate) fn presence_frame(
    key: &ActorKey,
    event: PresenceEvent,
    connection: &ConnectionId,
    member: &MemberRecord,
) -> String {
    ServerMessage::Presence {
        actor: key.address(),
        event,
        member: Member::from_record(connection, member),
    }
    .to_json()
}
