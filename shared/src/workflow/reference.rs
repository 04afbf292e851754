//! Input templates: a step's `input` is JSON in which every object of the exact form
//! `{"$ref": "<path>"}` is replaced by what the path names:
//! - `input` or `input.a.b`: the workflow's input (or a field of it);
//! - `steps.<step>.output` or `steps.<step>.output.a.b`: an earlier step's output.
//!
//! A path that names nothing (a missing field, a step that was skipped) resolves to `null`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The key that marks a reference object.
pub const REF: &str = "$ref";

/// Where a reference points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Input(Vec<String>),
    Output { step: String, path: Vec<String> },
}

impl Reference {
    pub fn parse(path: &str) -> Result<Self, String> {
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("reference {path:?} has an empty segment"));
        }
        let rest = |from: usize| parts[from..].iter().map(|s| (*s).to_owned()).collect();
        match parts.as_slice() {
            ["input", ..] => Ok(Reference::Input(rest(1))),
            ["steps", step, "output", ..] => Ok(Reference::Output {
                step: (*step).to_owned(),
                path: rest(3),
            }),
            _ => Err(format!(
                "reference {path:?} must start with `input` or `steps.<step>.output`"
            )),
        }
    }
}

/// Every reference in `template`, or the problems with the malformed ones.
pub fn references(template: &Value) -> (Vec<Reference>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    walk(template, &mut |path| match path {
        Some(p) => match Reference::parse(p) {
            Ok(r) => found.push(r),
            Err(problem) => problems.push(problem),
        },
        None => problems.push(format!("`{REF}` must be a string path")),
    });
    (found, problems)
}

pub(crate) fn as_reference(value: &Value) -> Option<Option<&str>> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(REF).map(Value::as_str),
        _ => None,
    }
}

/// Calls `visit` with every reference's path (`None` when it is not a string) in `value`.
pub(crate) fn walk<'a>(value: &'a Value, visit: &mut impl FnMut(Option<&'a str>)) {
    if let Some(path) = as_reference(value) {
        return visit(path);
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
        Value::Object(map) => map.values().for_each(|v| walk(v, visit)),
        _ => {}
    }
}

/// `template` with every reference replaced, reading `input` and the `outputs` so far.
pub fn resolve(template: &Value, input: &Value, outputs: &BTreeMap<String, Value>) -> Value {
    if let Some(path) = as_reference(template) {
        return match path.map(Reference::parse) {
            Some(Ok(Reference::Input(path))) => lookup(input, &path),
            Some(Ok(Reference::Output { step, path })) => outputs.get(&step).map_or(Value::Null, |v| lookup(v, &path)),
            _ => Value::Null,
        };
    }
    match template {
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, input, outputs)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, input, outputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn lookup(value: &Value, path: &[String]) -> Value {
    let mut current = value;
    for part in path {
        current = match current {
            Value::Object(map) => match map.get(part) {
                Some(v) => v,
                None => return Value::Null,
            },
            Value::Array(items) => match part.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(v) => v,
                None => return Value::Null,
            },
            _ => return Value::Null,
        };
    }
    current.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_replaced_anywhere_in_the_template() {
        let template = json!({
            "sku": {"$ref": "input.items.0.sku"},
            "reservation": {"$ref": "steps.reserve.output.id"},
            "all": [{"$ref": "input"}, 3, {"$ref": "steps.gone.output"}],
            "literal": {"$ref": "input", "other": 1}
        });
        let input = json!({"items": [{"sku": "A-1"}]});
        let outputs = BTreeMap::from([("reserve".to_owned(), json!({"id": "r-9"}))]);
        assert_eq!(
            resolve(&template, &input, &outputs),
            json!({
                "sku": "A-1",
                "reservation": "r-9",
                "all": [input.clone(), 3, null],
                "literal": {"$ref": "input", "other": 1}
            })
        );
    }

    #[test]
    fn malformed_references_are_reported() {
        let (found, problems) = references(&json!([{"$ref": "steps.a.result"}, {"$ref": 4}, {"$ref": "input..x"}]));
        assert!(found.is_empty());
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
