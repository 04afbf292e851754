//! Filtered subscriptions: the projection of a state on a few JSON Pointers (an object that
//! holds only those paths), and what a change means for it — the patch operations under the
//! paths, nothing, or a projected snapshot when a change replaces an ancestor of a path (or
//! shifts the array a path goes through).

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{Patch, PatchOperation};
use serde_json::{Map, Value};

/// Most paths one subscription may name.
pub const MAX_PATHS: usize = 16;

/// Checks the `paths` of a subscription: 1 to [`MAX_PATHS`] JSON Pointers, each naming a
/// member (starting with `/`). The error names the offending pointer.
pub fn check_paths(paths: &[String]) -> Result<(), String> {
    if paths.is_empty() || paths.len() > MAX_PATHS {
        return Err(format!(
            "`paths` must hold 1 to {MAX_PATHS} JSON Pointers, got {}",
            paths.len()
        ));
    }
    for path in paths {
        if !path.starts_with('/') {
            return Err(format!(
                "`paths`: {path:?} is not a JSON Pointer to a member (it must start with `/`)"
            ));
        }
        if let Err(e) = Pointer::parse(path) {
            return Err(format!("`paths`: {path:?} is not a JSON Pointer: {e}"));
        }
    }
    Ok(())
}

/// The state holding only the values at `paths` (intermediate containers as objects).
pub fn project(state: &Value, paths: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in paths {
        let Ok(pointer) = Pointer::parse(path) else { continue };
        let Ok(value) = pointer.resolve(state) else { continue };
        let mut at = &mut out;
        let tokens: Vec<String> = pointer.tokens().map(|t| t.decoded().into_owned()).collect();
        for (i, token) in tokens.iter().enumerate() {
            let Value::Object(map) = at else { break };
            if i + 1 == tokens.len() {
                map.insert(token.clone(), value.clone());
                break;
            }
            at = map.entry(token.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

/// What a change means for a projection.
#[derive(Debug, Clone, PartialEq)]
pub enum Filtered {
    /// No operation touches the paths: the subscriber gets nothing.
    Nothing,
    /// The operations under the paths, in order.
    Patch(Patch),
    /// An operation replaced an ancestor of a path (or moved the array it goes through):
    /// send the projected state.
    Snapshot,
}

/// Filters `patch` (taking some state to `new`) for a subscriber of `paths`.
pub fn filter(patch: &Patch, paths: &[String], new: &Value) -> Filtered {
    let arrays = arrays_on_the_way(paths, new);
    let mut kept = Vec::new();
    for op in &patch.0 {
        let (path, from) = targets(op);
        let at_path = relation(path, paths, &arrays);
        let at_from = from.map_or(Relation::None, |f| relation(f, paths, &arrays));
        if at_path == Relation::Ancestor || at_from != Relation::None {
            return Filtered::Snapshot;
        }
        if at_path == Relation::Under {
            kept.push(op.clone());
        }
    }
    if kept.is_empty() {
        Filtered::Nothing
    } else {
        Filtered::Patch(Patch(kept))
    }
}

/// Whether any operation of `patch` touches `paths` at all.
pub fn touches(patch: &Patch, paths: &[String], new: &Value) -> bool {
    filter(patch, paths, new) != Filtered::Nothing
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// At or under one of the paths.
    Under,
    /// A proper ancestor of a path, or inside an array a path goes through.
    Ancestor,
    None,
}

fn relation(op_path: &str, paths: &[String], arrays: &[String]) -> Relation {
    if paths.iter().any(|p| is_at_or_under(op_path, p)) {
        return Relation::Under;
    }
    let ancestor = paths.iter().any(|p| is_at_or_under(p, op_path) && p != op_path);
    let in_array = arrays.iter().any(|a| is_at_or_under(op_path, a) && op_path != a);
    if ancestor || in_array {
        Relation::Ancestor
    } else {
        Relation::None
    }
}

/// `path` equals `base` or lies below it.
fn is_at_or_under(path: &str, base: &str) -> bool {
    path == base || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/')) || base.is_empty()
}

fn targets(op: &PatchOperation) -> (&str, Option<&str>) {
    match op {
        PatchOperation::Add(o) => (o.path.as_str(), None),
        PatchOperation::Remove(o) => (o.path.as_str(), None),
        PatchOperation::Replace(o) => (o.path.as_str(), None),
        PatchOperation::Move(o) => (o.path.as_str(), Some(o.from.as_str())),
        PatchOperation::Copy(o) => (o.path.as_str(), Some(o.from.as_str())),
        PatchOperation::Test(o) => (o.path.as_str(), None),
    }
}

/// The arrays each path passes through in `state` (their pointers): an insert or removal in
/// one shifts what the path names.
fn arrays_on_the_way(paths: &[String], state: &Value) -> Vec<String> {
    let mut arrays = Vec::new();
    for path in paths {
        let Ok(pointer) = Pointer::parse(path) else { continue };
        let mut at = state;
        let mut walked = PointerBuf::new();
        for token in pointer.tokens() {
            if at.is_array() {
                arrays.push(walked.to_string());
            }
            let next = match at {
                Value::Object(map) => map.get(token.decoded().as_ref()),
                Value::Array(items) => token.decoded().parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(next) = next else { break };
            walked.push_back(token.clone());
            at = next;
        }
    }
    arrays
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(ops: Value) -> Patch {
        serde_json::from_value(ops).expect("patch")
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_projection_holds_only_the_paths() {
        let state =
            json!({"items": {"7": {"title": "a", "done": false}, "8": {"title": "b"}}, "title": "list", "n": 2});
        assert_eq!(
            project(&state, &paths(&["/items/7", "/title", "/missing"])),
            json!({"items": {"7": {"title": "a", "done": false}}, "title": "list"})
        );
    }

    #[test]
    fn operations_under_a_path_are_kept_others_dropped_ancestors_snapshot() {
        let new = json!({"items": {"7": {"done": true}}, "title": "x"});
        let p = paths(&["/items/7", "/title"]);
        let change = patch(json!([
            {"op": "replace", "path": "/items/7/done", "value": true},
            {"op": "replace", "path": "/items/8/done", "value": true},
            {"op": "replace", "path": "/nextId", "value": 3}
        ]));
        assert_eq!(
            filter(&change, &p, &new),
            Filtered::Patch(patch(
                json!([{"op": "replace", "path": "/items/7/done", "value": true}])
            ))
        );
        let elsewhere = patch(json!([{"op": "add", "path": "/items/9", "value": {}}]));
        assert_eq!(filter(&elsewhere, &p, &new), Filtered::Nothing);
        let ancestor = patch(json!([{"op": "replace", "path": "/items", "value": {}}]));
        assert_eq!(filter(&ancestor, &p, &new), Filtered::Snapshot);
        let root = patch(json!([{"op": "replace", "path": "", "value": {}}]));
        assert_eq!(filter(&root, &p, &new), Filtered::Snapshot);
        let moved = patch(json!([{"op": "move", "from": "/items/7", "path": "/items/6"}]));
        assert_eq!(filter(&moved, &p, &new), Filtered::Snapshot);
        // A path that is only a prefix as text is not an ancestor.
        let similar = patch(json!([{"op": "replace", "path": "/items/77", "value": 1}]));
        assert_eq!(filter(&similar, &p, &new), Filtered::Nothing);
    }

    #[test]
    fn an_insert_into_an_array_the_path_goes_through_snapshots() {
        let new = json!({"list": [{"t": "new"}, {"t": "a"}, {"t": "b"}]});
        let p = paths(&["/list/1/t"]);
        let insert = patch(json!([{"op": "add", "path": "/list/0", "value": {"t": "new"}}]));
        assert_eq!(filter(&insert, &p, &new), Filtered::Snapshot);
    }

    #[test]
    fn paths_must_be_member_pointers() {
        assert!(check_paths(&paths(&["/items/7", "/a~1b"])).is_ok());
        let err = check_paths(&paths(&["items/7"])).expect_err("no leading slash");
        assert!(err.contains("\"items/7\""), "{err}");
        assert!(check_paths(&paths(&["/a~2"]))
            .expect_err("bad escape")
            .contains("\"/a~2\""));
        assert!(check_paths(&[]).is_err());
        assert!(check_paths(&vec!["/a".to_owned(); 17]).is_err());
    }
}
