//! Pages of a spread fan-out: one message per shard of an actor's subscribers, carrying the
//! run's frame, handed to page workers through a FIFO queue (see [`PageQueue`]). The group
//! of a page is its (actor, shard), so one shard's pages are delivered one after the other
//! in the order the fan-out queued them (an actor's changes in stream order), while the
//! shards of one change go out in parallel, each in its own worker invocation. The
//! deduplication id names the run's end, so a retried stream batch queues no page twice.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::ActorKey;
use crate::ports::QueuedPage;
use crate::service::frames::RunFrame;

/// The largest page message queued (SQS takes 256 KiB per message and per batch); a run
/// whose frame does not fit is posted by the fan-out itself.
pub const MAX_PAGE_MESSAGE_BYTES: usize = 240 * 1024;

/// SQS's limit on a message group id and a deduplication id.
const MAX_ID_CHARS: usize = 128;

/// One page as a worker reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageTask {
    pub actor: ActorKey,
    pub shard: u32,
    pub(crate) frame: RunFrame<'static>,
}

/// The messages for every shard of `key` (0 to `shards`), or `None` when the frame is too
/// large for a message.
pub(crate) fn page_messages(key: &ActorKey, frame: &RunFrame<'_>, shards: u32) -> Option<Vec<QueuedPage>> {
    // The frame is serialized once; each page is the same body with its shard (the layout of
    // [`PageTask`]).
    let actor = serde_json::to_string(key).ok()?;
    let frame_json = serde_json::to_string(frame).ok()?;
    if frame_json.len() + actor.len() > MAX_PAGE_MESSAGE_BYTES {
        return None;
    }
    let end = frame.end();
    let pages = (0..shards)
        .map(|shard| {
            let group = format!("{key}#{shard}");
            QueuedPage {
                dedup: queue_id(format!("{group}@{end}")),
                group: queue_id(group),
                body: format!(r#"{{"actor":{actor},"shard":{shard},"frame":{frame_json}}}"#),
            }
        })
        .collect();
    Some(pages)
}

/// `id` as SQS takes it: itself when short enough, else its SHA-256 (hex).
fn queue_id(id: String) -> String {
    if id.len() <= MAX_ID_CHARS {
        return id;
    }
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_hashed_short_ones_kept() {
        assert_eq!(queue_id("acme/todo/a#3".into()), "acme/todo/a#3");
        let long = format!("acme/todo/{}#3", "x".repeat(128));
        let hashed = queue_id(long.clone());
        assert_eq!(hashed.len(), 64);
        assert_eq!(hashed, queue_id(long), "stable");
    }
}
