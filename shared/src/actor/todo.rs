//! The `todo` example actor: a list whose items are keyed by id, so edits make small deltas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{args, Actor, ActorError};

/// Longest item title, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Most items one list holds.
pub const MAX_ITEMS: usize = 5_000;

#[derive(Debug, Clone, Copy)]
pub struct TodoList;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TodoState {
    pub items: BTreeMap<String, TodoItem>,
    pub next_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoItem {
    pub title: String,
    pub done: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Title {
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemId {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    id: String,
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

const METHODS: [&str; 5] = ["add", "toggle", "rename", "remove", "clear_done"];

fn checked_title(title: String) -> Result<String, ActorError> {
    let title = title.trim().to_owned();
    if title.is_empty() {
        return Err(ActorError::bad_request("title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ActorError::bad_request(format!(
            "title is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(title)
}

fn item<'a>(state: &'a mut TodoState, id: &str) -> Result<&'a mut TodoItem, ActorError> {
    state
        .items
        .get_mut(id)
        .ok_or_else(|| ActorError::not_found(format!("no todo item {id:?}")))
}

impl Actor for TodoList {
    type State = TodoState;

    fn actor_type(&self) -> &'static str {
        "todo"
    }

    fn call(&self, state: &mut TodoState, method: &str, raw: Value) -> Result<Value, ActorError> {
        match method {
            "add" => {
                let Title { title } = args(method, raw)?;
                let title = checked_title(title)?;
                if state.items.len() >= MAX_ITEMS {
                    return Err(ActorError::bad_request(format!(
                        "a list holds at most {MAX_ITEMS} items"
                    )));
                }
                state.next_id += 1;
                let id = state.next_id.to_string();
                state.items.insert(id.clone(), TodoItem { title, done: false });
                Ok(json!({ "id": id }))
            }
            "toggle" => {
                let ItemId { id } = args(method, raw)?;
                let item = item(state, &id)?;
                item.done = !item.done;
                Ok(json!({ "done": item.done }))
            }
            "rename" => {
                let Rename { id, title } = args(method, raw)?;
                let title = checked_title(title)?;
                item(state, &id)?.title = title;
                Ok(Value::Null)
            }
            "remove" => {
                let ItemId { id } = args(method, raw)?;
                state
                    .items
                    .remove(&id)
                    .ok_or_else(|| ActorError::not_found(format!("no todo item {id:?}")))?;
                Ok(Value::Null)
            }
            "clear_done" => {
                let NoArgs {} = args(method, raw)?;
                let before = state.items.len();
                state.items.retain(|_, item| !item.done);
                Ok(json!({ "removed": before - state.items.len() }))
            }
            other => Err(ActorError::unknown_method("todo", other, &METHODS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn add_toggle_rename_remove_clear() {
        let mut s = TodoState::default();
        assert_eq!(
            TodoList.call(&mut s, "add", json!({"title": " milk "})),
            Ok(json!({"id": "1"}))
        );
        assert_eq!(
            TodoList.call(&mut s, "add", json!({"title": "eggs"})),
            Ok(json!({"id": "2"}))
        );
        assert_eq!(
            TodoList.call(&mut s, "toggle", json!({"id": "1"})),
            Ok(json!({"done": true}))
        );
        TodoList
            .call(&mut s, "rename", json!({"id": "2", "title": "bread"}))
            .expect("rename");
        assert_eq!(
            s.items["1"],
            TodoItem {
                title: "milk".into(),
                done: true
            }
        );
        assert_eq!(s.items["2"].title, "bread");
        assert_eq!(
            TodoList.call(&mut s, "clear_done", Value::Null),
            Ok(json!({"removed": 1}))
        );
        TodoList.call(&mut s, "remove", json!({"id": "2"})).expect("remove");
        assert!(s.items.is_empty());
        assert_eq!(s.next_id, 2, "ids are never reused");
    }

    #[test]
    fn refuses_missing_items_and_bad_titles() {
        let mut s = TodoState::default();
        assert_eq!(
            TodoList.call(&mut s, "toggle", json!({"id": "9"})).map_err(|e| e.code),
            Err(ErrorCode::NotFound)
        );
        assert_eq!(
            TodoList.call(&mut s, "add", json!({"title": "  "})).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        assert_eq!(
            TodoList.call(&mut s, "add", json!({"title": long})).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            TodoList.call(&mut s, "add", json!({})).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(s, TodoState::default());
    }
}
