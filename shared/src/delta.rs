//! Deltas between actor states: RFC 6902 JSON Patch, with a snapshot when a patch would not pay.

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, Patch, PatchError, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

/// What to send subscribers for one change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A patch strictly smaller (serialized) than the new state.
    Delta(Patch),
    /// Send the new state whole: the patch would have been as large or larger.
    Snapshot,
}

/// The patch taking `old` to `new`: the same operations, in the same order, as
/// `json_patch::diff`, without its per-key allocations. Objects whose keys match pairwise (a
/// keyed map with an item edited) are walked side by side with no lookups, and a path is
/// built only for an operation that is emitted.
pub fn diff(old: &Value, new: &Value) -> Patch {
    let mut differ = Differ::default();
    differ.value(old, new);
    Patch(differ.ops)
}

/// One step of the path to the value being compared.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

#[derive(Default)]
struct Differ<'a> {
    path: Vec<Segment<'a>>,
    ops: Vec<PatchOperation>,
}

impl<'a> Differ<'a> {
    fn value(&mut self, old: &'a Value, new: &'a Value) {
        match (old, new) {
            (Value::Object(old), Value::Object(new)) => self.object(old, new),
            (Value::Array(old), Value::Array(new)) => self.array(old, new),
            _ if old == new => {}
            _ => {
                let path = self.pointer();
                self.ops.push(PatchOperation::Replace(ReplaceOperation {
                    path,
                    value: new.clone(),
                }));
            }
        }
    }

    /// Adds and replaces in `new`'s key order, then removes in `old`'s.
    fn object(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>) {
        let mut matched = 0;
        for ((old_key, old_value), (new_key, new_value)) in old.iter().zip(new) {
            if old_key != new_key {
                break;
            }
            self.path.push(Segment::Key(new_key));
            self.value(old_value, new_value);
            self.path.pop();
            matched += 1;
        }
        if matched == old.len() && matched == new.len() {
            return;
        }
        for (key, new_value) in new.iter().skip(matched) {
            self.path.push(Segment::Key(key));
            match old.get(key) {
                Some(old_value) => self.value(old_value, new_value),
                None => {
                    let path = self.pointer();
                    self.ops.push(PatchOperation::Add(AddOperation {
                        path,
                        value: new_value.clone(),
                    }));
                }
            }
            self.path.pop();
        }
        for key in old.keys().skip(matched).filter(|key| !new.contains_key(*key)) {
            self.path.push(Segment::Key(key));
            let path = self.pointer();
            self.ops.push(PatchOperation::Remove(RemoveOperation { path }));
            self.path.pop();
        }
    }

    /// Index by index: replaced in place, extra old items removed at the end, new ones appended.
    fn array(&mut self, old: &'a [Value], new: &'a [Value]) {
        for (index, (old_value, new_value)) in old.iter().zip(new).enumerate() {
            self.path.push(Segment::Index(index));
            self.value(old_value, new_value);
            self.path.pop();
        }
        for _ in new.len()..old.len() {
            self.path.push(Segment::Index(new.len()));
            let path = self.pointer();
            self.ops.push(PatchOperation::Remove(RemoveOperation { path }));
            self.path.pop();
        }
        for (index, value) in new.iter().enumerate().skip(old.len()) {
            self.path.push(Segment::Index(index));
            let path = self.pointer();
            self.ops.push(PatchOperation::Add(AddOperation {
                path,
                value: value.clone(),
            }));
            self.path.pop();
        }
    }

    /// The JSON Pointer of the current path, built in one string (an index is written in place,
    /// not through a temporary token).
    fn pointer(&self) -> PointerBuf {
        use std::fmt::Write as _;
        let mut pointer = String::with_capacity(self.path.len() * 8);
        for segment in &self.path {
            pointer.push('/');
            match segment {
                Segment::Key(key) => pointer.push_str(Token::new(*key).encoded()),
                // Writing to a String cannot fail.
                Segment::Index(index) => {
                    let _ = write!(pointer, "{index}");
                }
            }
        }
        // Every token above is encoded, so the pointer parses; token by token otherwise.
        PointerBuf::parse(pointer).unwrap_or_else(|_| {
            PointerBuf::from_tokens(self.path.iter().map(|segment| match segment {
                Segment::Key(key) => Token::new(*key),
                Segment::Index(index) => Token::from(*index),
            }))
        })
    }
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
    let mut counter = ByteCounter {
        len: 0,
        limit: usize::MAX,
    };
    // Writing into an unlimited counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.len
}

/// Whether `value` as compact JSON is longer than `limit` bytes; stops counting past `limit`.
pub fn serialized_len_exceeds(value: &impl serde::Serialize, limit: usize) -> bool {
    let mut counter = ByteCounter { len: 0, limit };
    // The only error a counter returns is "past the limit".
    serde_json::to_writer(&mut counter, value).is_err() || counter.len > limit
}

/// Counts the bytes written; refuses a write that takes it past `limit`.
struct ByteCounter {
    len: usize,
    limit: usize,
}

impl std::io::Write for ByteCounter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len();
        if self.len > self.limit {
            return Err(std::io::ErrorKind::Other.into());
        }
        Ok(buf.len())
    }
    #[inline]
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

    /// The hand-rolled diff emits exactly what `json_patch::diff` does, and its patch applies.
    #[test]
    fn diff_matches_json_patch_and_applies() {
        let pairs = [
            (json!({"a": 1, "b": {"c": [1, 2]}}), json!({"a": 1, "b": {"c": [1, 3]}})),
            (json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "c": 4, "d": 5})),
            (json!({"x": 1}), json!({"a": 0, "x": 2, "z": {"q": "~/"}})),
            (json!({"k/~": {"m": 1}}), json!({"k/~": {"m": 2}})),
            (json!([1, 2, 3, 4]), json!([1, 5])),
            (json!([1]), json!([0, 1, {"a": []}])),
            (json!({"a": [1]}), json!({"a": {"0": 1}})),
            (json!("s"), json!({"a": 1})),
            (json!({"items": {}}), json!({"items": {"1": {"done": false}}})),
            (json!({"same": [1, {"a": null}]}), json!({"same": [1, {"a": null}]})),
        ];
        for (old, new) in &pairs {
            let ours = diff(old, new);
            assert_eq!(ours, json_patch::diff(old, new), "{old} -> {new}");
            let mut applied = old.clone();
            apply(&mut applied, &ours).expect("applies");
            assert_eq!(&applied, new);
        }
    }

    #[test]
    fn a_patch_that_does_not_fit_leaves_the_state_untouched() {
        let mut state = json!({"a": 1});
        let patch: Patch = serde_json::from_value(json!([{"op":"remove","path":"/missing"}])).expect("patch");
        assert!(apply(&mut state, &patch).is_err());
        assert_eq!(state, json!({"a": 1}));
    }
}
