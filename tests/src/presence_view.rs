//! A client's view of an actor's presence, kept by the rule clients follow: members by id,
//! the highest `rev` wins, and a member id that left stays gone (frames may come in any order).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::ws_client::WsClient;

#[derive(Debug, Default, Clone)]
pub struct PresenceView {
    members: BTreeMap<String, Value>,
    left: HashSet<String>,
}

impl PresenceView {
    /// The view a `subscribed` reply starts (its `members`).
    pub fn from_reply(reply: &Value) -> Self {
        let mut view = Self::default();
        for member in reply["members"].as_array().into_iter().flatten() {
            view.put(member);
        }
        view
    }

    /// Applies a `presence` frame; other frames are ignored (returns whether it applied one).
    pub fn apply(&mut self, frame: &Value) -> bool {
        if frame["type"] != "presence" {
            return false;
        }
        let member = &frame["member"];
        match frame["event"].as_str() {
            Some("leave") => {
                let id = member["id"].as_str().expect("member id").to_owned();
                self.members.remove(&id);
                self.left.insert(id);
            }
            Some("join" | "update") => self.put(member),
            other => panic!("unknown presence event {other:?}: {frame}"),
        }
        true
    }

    fn put(&mut self, member: &Value) {
        let id = member["id"].as_str().expect("member id").to_owned();
        let rev = member["rev"].as_u64().expect("rev");
        let newer = self
            .members
            .get(&id)
            .is_none_or(|held| held["rev"].as_u64() < Some(rev));
        if !self.left.contains(&id) && newer {
            self.members.insert(id, member.clone());
        }
    }

    /// The members' `presence.name`s.
    pub fn names(&self) -> BTreeSet<String> {
        self.members
            .values()
            .map(|m| m["presence"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The member whose `presence.name` is `name`.
    pub fn member_named(&self, name: &str) -> Option<&Value> {
        self.members.values().find(|m| m["presence"]["name"] == name)
    }

    /// Reads `client`'s frames into the view until its names are `expected` (each read fails
    /// the test after the client's frame timeout); returns the other frames read.
    pub async fn until_names(&mut self, client: &mut WsClient, expected: &[&str]) -> Vec<Value> {
        let expected: BTreeSet<String> = expected.iter().map(|n| (*n).to_owned()).collect();
        let mut other = Vec::new();
        while self.names() != expected {
            let frame = client.frame().await;
            if !self.apply(&frame) {
                other.push(frame);
            }
        }
        other
    }
}
