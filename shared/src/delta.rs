//! Deltas between actor states: RFC 6902 JSON Patch, with a snapshot when a patch would not pay.

use json_patch::{Patch, PatchError};
use serde_json::Value;

/// What to send subscribers for one change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A patch strictly smaller (serialized) than the new state.
    Delta(Patch),
    /// Send the new state whole: the patch would have been as large or larger.
    Snapshot,
}

/// The patch taking `old` to `new`.
pub fn diff(old: &Value, new: &Value) -> Patch {
    json_patch::diff(old, new)
}

/// Applies `patch` to `state` in place; on error `state` is left unchanged.
pub fn apply(state: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    json_patch::patch(state, patch)
}

/// Diffs `old` → `new` and decides between a delta and a snapshot.
pub fn change(old: &Value, new: &Value) -> Change {
    let patch = diff(old, new);
    let patch_len = serialized_len(&patch);
    // Counting stops as soon as `new` is known to be longer than the patch, so a small edit
    // of a large state does not serialize the whole state.
    if serialized_len_exceeds(new, patch_len) {
        Change::Delta(patch)
    } else {
        Change::Snapshot
    }
}

/// Length of `value` as compact JSON, counted without building the string.
pub fn serialized_len(value: &impl serde::Serialize) -> usize {
    let mut counter = ByteCounter { len: 0, limit: None };
    // Writing into an unlimited counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.len
}

/// Whether `value` as compact JSON is longer than `limit` bytes; stops counting past `limit`.
pub fn serialized_len_exceeds(value: &impl serde::Serialize, limit: usize) -> bool {
    let mut counter = ByteCounter {
        len: 0,
        limit: Some(limit),
    };
    // The only error a counter returns is "past the limit".
    serde_json::to_writer(&mut counter, value).is_err() || counter.len > limit
}

struct ByteCounter {
    len: usize,
    limit: Option<usize>,
}

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len();
        match self.limit {
            Some(limit) if self.len > limit => Err(std::io::Error::other("past the limit")),
            _ => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_small_edit_of_a_keyed_map_is_a_small_delta() {
        let items: serde_json::Map<String, Value> = (1..=100)
            .map(|i| (i.to_string(), json!({"title": format!("item {i}"), "done": false})))
            .collect();
        let old = json!({ "items": items });
        let mut new = old.clone();
        new["items"]["42"]["done"] = json!(true);
        let Change::Delta(patch) = change(&old, &new) else {
            panic!("expected a delta")
        };
        assert_eq!(
            serde_json::to_value(&patch).expect("json"),
            json!([{"op":"replace","path":"/items/42/done","value":true}])
        );
        let mut applied = old.clone();
        apply(&mut applied, &patch).expect("applies");
        assert_eq!(applied, new);
    }

    #[test]
    fn a_rewrite_of_everything_falls_back_to_a_snapshot() {
        let old = json!({"a": 1});
        let new = json!({"b": 2});
        assert_eq!(change(&old, &new), Change::Snapshot);
        let front_insert_old = json!({"list": (0..50).collect::<Vec<_>>()});
        let front_insert_new = json!({"list": (-1..50).collect::<Vec<_>>()});
        assert_eq!(change(&front_insert_old, &front_insert_new), Change::Snapshot);
    }

    #[test]
    fn bounded_length_agrees_with_the_full_count_at_every_limit() {
        let values = [
            json!(null),
            json!("a \"quoted\" ~/string"),
            json!({"items": {"1": {"title": "milk", "done": false}}, "nextId": 1}),
            json!([1, [2, 3], {"a": []}]),
        ];
        for value in &values {
            let len = serialized_len(value);
            assert_eq!(len, serde_json::to_string(value).expect("json").len());
            for limit in 0..len + 3 {
                assert_eq!(
                    serialized_len_exceeds(value, limit),
                    len > limit,
                    "{value} at limit {limit}"
                );
            }
        }
    }

    #[test]
    fn a_delta_must_be_strictly_smaller_than_the_state() {
        let with_pad = |k: u8, pad: usize| json!({"k": k, "pad": "x".repeat(pad)});
        let patch_len = serialized_len(&diff(&with_pad(1, 0), &with_pad(2, 0)));
        let equal = patch_len - serialized_len(&with_pad(2, 0));
        assert_eq!(serialized_len(&with_pad(2, equal)), patch_len);
        assert_eq!(change(&with_pad(1, equal), &with_pad(2, equal)), Change::Snapshot);
        assert!(matches!(
            change(&with_pad(1, equal + 1), &with_pad(2, equal + 1)),
            Change::Delta(_)
        ));
    }

    #[test]
    fn a_patch_that_does_not_fit_leaves_the_state_untouched() {
        let mut state = json!({"a": 1});
        let patch: Patch = serde_json::from_value(json!([{"op":"remove","path":"/missing"}])).expect("patch");
        assert!(apply(&mut state, &patch).is_err());
        assert_eq!(state, json!({"a": 1}));
    }
}
