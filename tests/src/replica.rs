//! A client's copy of one actor, kept current the way the protocol tells clients to:
//! deltas apply only on top of `from`, snapshots replace, older frames are duplicates.

use serde_json::Value;
use statecast::delta;

#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub epoch: u64,
    pub version: u64,
    pub state: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    Duplicate,
    /// Something was missed: the client must subscribe again.
    Gap,
}

impl Replica {
    /// From a `subscribed` frame carrying the state.
    pub fn from_subscribed(frame: &Value) -> Replica {
        assert_eq!(frame["type"], "subscribed", "{frame}");
        assert!(
            frame.get("state").is_some(),
            "a fresh subscription carries the state: {frame}"
        );
        Replica {
            epoch: frame["epoch"].as_u64().expect("epoch"),
            version: frame["version"].as_u64().expect("version"),
            state: frame["state"].clone(),
        }
    }

    /// The `since` to resubscribe with.
    pub fn since(&self) -> Value {
        serde_json::json!({"epoch": self.epoch, "version": self.version})
    }

    /// Takes the reply to a subscribe sent with [`Replica::since`]: a resumed patch applies
    /// on top of what is held (a resume to a version already held, because the fan-out was
    /// faster, is a duplicate); a state replaces it. Returns whether it resumed.
    pub fn resubscribed(&mut self, frame: &Value) -> bool {
        assert_eq!(frame["type"], "subscribed", "{frame}");
        let epoch = frame["epoch"].as_u64().expect("epoch");
        let version = frame["version"].as_u64().expect("version");
        if frame["resumed"] == true {
            if epoch == self.epoch && version <= self.version {
                return true;
            }
            assert_eq!(
                frame["from"].as_u64(),
                Some(self.version),
                "resumes from what is held: {frame}"
            );
            let patch = serde_json::from_value(frame["patch"].clone()).expect("a JSON patch");
            delta::apply(&mut self.state, &patch).expect("the missed patch applies");
            (self.epoch, self.version) = (epoch, version);
            true
        } else {
            (self.epoch, self.version, self.state) = (epoch, version, frame["state"].clone());
            false
        }
    }

    /// Applies a `delta`, `snapshot` or `deleted` frame.
    pub fn apply(&mut self, frame: &Value, default_state: &Value) -> Applied {
        let epoch = frame["epoch"].as_u64().unwrap_or(0);
        match frame["type"].as_str() {
            Some("delta") => {
                let from = frame["from"].as_u64().unwrap_or(0);
                let to = frame["to"].as_u64().unwrap_or(0);
                let same_history = epoch == self.epoch || self.version == 0;
                if same_history && to <= self.version {
                    return Applied::Duplicate;
                }
                if !same_history || from != self.version {
                    return Applied::Gap;
                }
                let patch = serde_json::from_value(frame["patch"].clone()).expect("a JSON patch");
                delta::apply(&mut self.state, &patch).expect("the patch applies to the state it was made from");
                (self.epoch, self.version) = (epoch, to);
                Applied::Applied
            }
            Some("snapshot") => {
                let version = frame["version"].as_u64().unwrap_or(0);
                if epoch == self.epoch && version <= self.version {
                    return Applied::Duplicate;
                }
                (self.epoch, self.version, self.state) = (epoch, version, frame["state"].clone());
                Applied::Applied
            }
            Some("deleted") => {
                (self.epoch, self.version, self.state) = (0, 0, default_state.clone());
                Applied::Applied
            }
            other => panic!("not a change frame: {other:?}"),
        }
    }
}
