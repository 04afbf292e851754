//! Reassembles `part` frames into the frame they carry, as a client must: parts of one
//! message in index order; a duplicate is ignored, a foreign one (another count) refused.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Default)]
pub struct Reassembler {
    messages: BTreeMap<String, (u64, BTreeMap<u64, String>)>,
}

impl Reassembler {
    /// Feeds one received frame: a whole frame comes back at once; a part comes back as the
    /// frame it completes, or `None` while parts are missing.
    pub fn feed(&mut self, frame: Value) -> Option<Value> {
        if frame["type"] != "part" {
            return Some(frame);
        }
        let message = frame["message"].as_str().expect("message").to_owned();
        let index = frame["index"].as_u64().expect("index");
        let count = frame["count"].as_u64().expect("count");
        let data = frame["data"].as_str().expect("data").to_owned();
        let entry = self
            .messages
            .entry(message.clone())
            .or_insert_with(|| (count, BTreeMap::new()));
        assert_eq!(entry.0, count, "a foreign part of {message}");
        entry.1.entry(index).or_insert(data);
        if entry.1.len() as u64 != count {
            return None;
        }
        let (_, parts) = self.messages.remove(&message).expect("present");
        let text: String = parts.into_values().collect();
        Some(serde_json::from_str(&text).expect("the joined parts are a JSON frame"))
    }
}
