//! Templates over a trigger's event: the `{"$ref": "<path>"}` objects workflows use, with
//! dotted paths into the event (`body.title`, `headers.x-kind`, `body.items.0.sku`). Unlike a
//! workflow step's input, a path that names nothing is an error naming that path: a webhook
//! that lacks a field gets 400, it does not call a method with `null`.

use serde_json::Value;

use crate::workflow::reference::{as_reference, walk, REF};

/// The top-level fields of each source's event.
pub const WEBHOOK_FIELDS: &[&str] = &["trigger", "body", "headers", "deliveryId", "receivedAt"];
pub const QUEUE_FIELDS: &[&str] = &["trigger", "body", "messageId", "attributes", "queue"];
pub const SCHEDULE_FIELDS: &[&str] = &["trigger", "time"];

/// A reference that named nothing in the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` names nothing in the event")]
pub struct Unresolved {
    pub path: String,
}

/// Problems with the references of `template` for an event with the top-level `fields`.
pub fn check(template: &Value, fields: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    walk(template, &mut |path| match path {
        None => problems.push(format!("`{REF}` must be a string path")),
        Some(path) => {
            let mut parts = path.split('.');
            let root = parts.next().unwrap_or_default();
            if path.split('.').any(str::is_empty) {
                problems.push(format!("reference {path:?} has an empty segment"));
            } else if !fields.contains(&root) {
                problems.push(format!(
                    "reference {path:?} must start with one of {}",
                    fields.join(", ")
                ));
            }
        }
    });
    problems
}

/// `template` with every reference replaced by what it names in `event`.
pub fn resolve(template: &Value, event: &Value) -> Result<Value, Unresolved> {
    if let Some(path) = as_reference(template) {
        let path = path.unwrap_or_default();
        return lookup(event, path)
            .cloned()
            .ok_or_else(|| Unresolved { path: path.to_owned() });
    }
    Ok(match template {
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, event)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, event)?)))
                .collect::<Result<_, Unresolved>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(event, |current, part| match current {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn references_resolve_anywhere_and_missing_ones_name_their_path() {
        let event = json!({"body": {"title": "milk", "tags": ["a", "b"]}, "headers": {"x-kind": "k"}});
        let template = json!({"title": {"$ref": "body.title"}, "first": [{"$ref": "body.tags.1"}], "n": 3});
        assert_eq!(
            resolve(&template, &event),
            Ok(json!({"title": "milk", "first": ["b"], "n": 3}))
        );
        assert_eq!(
            resolve(&json!({"x": {"$ref": "body.nope.deeper"}}), &event),
            Err(Unresolved {
                path: "body.nope.deeper".into()
            })
        );
        assert_eq!(
            resolve(&json!({"$ref": "body.tags.7"}), &event)
                .expect_err("unresolved")
                .path,
            "body.tags.7"
        );
    }

    #[test]
    fn references_outside_the_event_are_reported_at_declaration() {
        let problems = check(
            &json!([{"$ref": "input.x"}, {"$ref": 3}, {"$ref": "body..x"}, {"$ref": "body.ok"}]),
            WEBHOOK_FIELDS,
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("input.x"));
    }
}
