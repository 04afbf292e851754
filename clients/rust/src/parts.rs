//! Reassembly of `part` frames: a message over the 128 KB limit arrives as `count` ordered
//! parts sharing a `message` id; joined in index order, their `data` is the JSON text of the
//! original frame. Duplicated parts are ignored. A message is lost when a part stays missing
//! (timeout), when a newer state message for the same actor starts, or when a part disagrees
//! on `count`; the owner then resubscribes. Pure logic: time is passed in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::Part;

/// How many finished message ids are remembered, to ignore their late duplicate parts.
const REMEMBERED: usize = 256;
/// Most parts one message may announce (128 MB): a larger `count` is not a real message.
const MAX_PARTS: usize = 1024;

/// Why a message was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    Timeout,
    Superseded,
    Foreign,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartEvent {
    /// All parts arrived: the text of the original frame.
    Complete(String),
    /// A message was dropped; `actor` when its first part named one.
    Lost { actor: Option<String>, reason: LostReason },
}

#[derive(Debug)]
struct Pending {
    parts: Vec<Option<String>>,
    received: usize,
    actor: Option<String>,
    deadline: Instant,
}

#[derive(Debug)]
pub struct PartAssembler {
    timeout: Duration,
    pending: HashMap<String, Pending>,
    finished: HashSet<String>,
    finished_order: VecDeque<String>,
}

impl PartAssembler {
    pub fn new(timeout: Duration) -> PartAssembler {
        PartAssembler {
            timeout,
            pending: HashMap::new(),
            finished: HashSet::new(),
            finished_order: VecDeque::new(),
        }
    }

    pub fn receive(&mut self, part: Part, now: Instant) -> Vec<PartEvent> {
        let mut events = Vec::new();
        if self.finished.contains(&part.message) || part.count > MAX_PARTS {
            return events; // a late duplicate of a finished or dropped message
        }
        let message = self.pending.entry(part.message.clone()).or_insert_with(|| Pending {
            parts: vec![None; part.count],
            received: 0,
            actor: None,
            deadline: now,
        });
        if message.parts.len() != part.count {
            self.drop_message(&part.message, LostReason::Foreign, &mut events);
            return events;
        }
        let Some(slot) = message.parts.get_mut(part.index) else {
            return events;
        };
        if slot.is_some() {
            return events; // duplicate part
        }
        let first_actor = if part.index == 0 { actor_of(&part.data) } else { None };
        *slot = Some(part.data);
        message.received += 1;
        message.deadline = now + self.timeout;
        if let Some(actor) = first_actor {
            message.actor = Some(actor.clone());
            events.extend(self.superseded(&actor, Some(&part.message)));
        }
        let complete = self
            .pending
            .get(&part.message)
            .is_some_and(|m| m.received == m.parts.len());
        if complete {
            if let Some(message) = self.finish(&part.message) {
                events.push(PartEvent::Complete(message.parts.into_iter().flatten().collect()));
            }
        }
        events
    }

    /// A newer state message for `actor` arrived: its unfinished messages are lost.
    pub fn superseded(&mut self, actor: &str, except: Option<&str>) -> Vec<PartEvent> {
        let keys: Vec<String> = self
            .pending
            .iter()
            .filter(|(key, m)| Some(key.as_str()) != except && m.actor.as_deref() == Some(actor))
            .map(|(key, _)| key.clone())
            .collect();
        let mut events = Vec::new();
        for key in keys {
            self.drop_message(&key, LostReason::Superseded, &mut events);
        }
        events
    }

    /// Drops the messages whose next part is overdue at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PartEvent> {
        let keys: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        let mut events = Vec::new();
        for key in keys {
            self.drop_message(&key, LostReason::Timeout, &mut events);
        }
        events
    }

    /// When the next message times out, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|m| m.deadline).min()
    }

    /// Forgets everything (the connection closed: parts never span connections).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.finished.clear();
        self.finished_order.clear();
    }

    fn drop_message(&mut self, key: &str, reason: LostReason, events: &mut Vec<PartEvent>) {
        if let Some(message) = self.finish(key) {
            events.push(PartEvent::Lost {
                actor: message.actor,
                reason,
            });
        }
    }

    fn finish(&mut self, key: &str) -> Option<Pending> {
        let message = self.pending.remove(key)?;
        if self.finished.insert(key.to_owned()) {
            self.finished_order.push_back(key.to_owned());
        }
        if self.finished_order.len() > REMEMBERED {
            if let Some(oldest) = self.finished_order.pop_front() {
                self.finished.remove(&oldest);
            }
        }
        Some(message)
    }
}

/// The actor named by the first part of a `subscribed` or `snapshot` frame (the server
/// writes `actor` before `state`).
pub fn actor_of(first_part: &str) -> Option<String> {
    let rest = first_part
        .strip_prefix(r#"{"type":"subscribed""#)
        .or_else(|| first_part.strip_prefix(r#"{"type":"snapshot""#))?;
    let head = &rest[..rest.find(['{', '[']).unwrap_or(rest.len())];
    let at = head.find(r#""actor":"#)? + r#""actor":"#.len();
    let mut values = serde_json::Deserializer::from_str(rest.get(at..)?).into_iter::<String>();
    values.next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(message: &str, index: usize, count: usize, data: &str) -> Part {
        Part {
            message: message.into(),
            index,
            count,
            data: data.into(),
        }
    }

    const FRAME: &str = r#"{"type":"snapshot","actor":"todo/big","epoch":1,"version":2,"state":{"a":"xyz"}}"#;

    fn split(text: &str, at: &[usize]) -> Vec<String> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for &end in at.iter().chain([text.len()].iter()) {
            pieces.push(text[start..end].to_owned());
            start = end;
        }
        pieces
    }

    /// Parts in any order, with duplicates, join into the original frame exactly once.
    #[test]
    fn parts_in_any_order_join_into_the_frame() {
        let pieces = split(FRAME, &[20, 50]);
        let mut parts = PartAssembler::new(Duration::from_secs(5));
        let now = Instant::now();
        assert!(parts.receive(part("m1", 2, 3, &pieces[2]), now).is_empty());
        assert!(parts.receive(part("m1", 0, 3, &pieces[0]), now).is_empty());
        assert!(parts.receive(part("m1", 0, 3, &pieces[0]), now).is_empty(), "duplicate");
        let done = parts.receive(part("m1", 1, 3, &pieces[1]), now);
        assert_eq!(done, vec![PartEvent::Complete(FRAME.to_owned())]);
        assert!(
            parts.receive(part("m1", 1, 3, &pieces[1]), now).is_empty(),
            "late duplicate"
        );
        assert_eq!(parts.next_deadline(), None);
    }

    /// A message whose parts stop arriving is lost after the timeout, naming its actor.
    #[test]
    fn a_missing_part_times_out() {
        let pieces = split(FRAME, &[40]);
        let mut parts = PartAssembler::new(Duration::from_secs(5));
        let now = Instant::now();
        parts.receive(part("m1", 0, 2, &pieces[0]), now);
        assert_eq!(parts.next_deadline(), Some(now + Duration::from_secs(5)));
        assert!(parts.expire(now + Duration::from_secs(4)).is_empty());
        assert_eq!(
            parts.expire(now + Duration::from_secs(5)),
            vec![PartEvent::Lost {
                actor: Some("todo/big".into()),
                reason: LostReason::Timeout
            }]
        );
        assert!(parts.receive(part("m1", 1, 2, &pieces[1]), now).is_empty(), "given up");
    }

    /// A newer message for the same actor supersedes an unfinished one; a part with another
    /// `count` marks its message foreign.
    #[test]
    fn newer_messages_supersede_and_foreign_parts_drop() {
        let pieces = split(FRAME, &[40]);
        let mut parts = PartAssembler::new(Duration::from_secs(5));
        let now = Instant::now();
        parts.receive(part("m1", 0, 2, &pieces[0]), now);
        let events = parts.receive(part("m2", 0, 2, &pieces[0]), now);
        assert_eq!(
            events,
            vec![PartEvent::Lost {
                actor: Some("todo/big".into()),
                reason: LostReason::Superseded
            }]
        );
        let events = parts.receive(part("m2", 1, 3, &pieces[1]), now);
        assert!(matches!(
            &events[..],
            [PartEvent::Lost {
                reason: LostReason::Foreign,
                ..
            }]
        ));
    }

    #[test]
    fn actor_is_read_from_the_first_part_only_before_the_state() {
        assert_eq!(actor_of(&FRAME[..40]), Some("todo/big".into()));
        let subscribed = r#"{"type":"subscribed","id":1,"actor":"todo/\"q\"","epoch":1"#;
        assert_eq!(actor_of(subscribed), Some("todo/\"q\"".into()));
        assert_eq!(actor_of(r#"{"type":"delta","actor":"todo/x""#), None);
        assert_eq!(actor_of(r#"{"type":"snapshot","state":{"actor":"x"}}"#), None);
        assert_eq!(actor_of(r#"{"type":"snapshot","actor":"tod"#), None);
    }
}
