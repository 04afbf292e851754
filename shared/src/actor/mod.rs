//! Actors: keyed state plus named methods, and the registry from type name to actor.
//!
//! A method is a pure function of (state, args): it gets the state by `&mut`, returns a JSON
//! value for the caller or an [`ActorError`]. Loading, version checks and writes belong to
//! the call service, never to an actor.

mod counter;
mod todo;

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::protocol::ErrorCode;

pub use counter::Counter;
pub use todo::{TodoItem, TodoList, TodoState};

/// A typed error a method returns; sent to the caller as an `error` frame with this code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActorError {
    pub code: ErrorCode,
    pub message: String,
}

impl ActorError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unknown_method(actor_type: &str, method: &str, known: &[&str]) -> Self {
        Self::not_found(format!(
            "actor type {actor_type:?} has no method {method:?}; methods: {}",
            known.join(", ")
        ))
    }
}

/// Decodes a method's `args` into `T` (derive `Deserialize`, with `deny_unknown_fields` to
/// refuse typos); `null` (no args sent) reads as `{}`. Only an object is accepted, so a struct
/// can never be filled from an array by position.
pub fn args<T: DeserializeOwned>(method: &str, args: Value) -> Result<T, ActorError> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        object @ Value::Object(_) => object,
        _ => return Err(not_an_object(method)),
    };
    serde_json::from_value(args).map_err(|e| ActorError::bad_request(format!("invalid args for {method}: {e}")))
}

fn not_an_object(method: &str) -> ActorError {
    ActorError::bad_request(format!(
        "invalid args for {method}: `args` must be a JSON object (or absent)"
    ))
}

/// A workflow a method asked to start.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowStart {
    pub workflow: String,
    pub input: Value,
    pub workflow_id: String,
}

/// Side effects a method asks for. They happen only if the call's result is stored, and in
/// the same DynamoDB transaction as its new state: either both or neither.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    starts: Vec<WorkflowStart>,
}

impl Effects {
    /// Starts `workflow` with `input` together with this call's state change and returns the
    /// new instance's id (keep it in the state to follow or cancel the run).
    pub fn start_workflow(&mut self, workflow: impl Into<String>, input: Value) -> String {
        let workflow_id = crate::workflow::new_workflow_id();
        self.starts.push(WorkflowStart {
            workflow: workflow.into(),
            input,
            workflow_id: workflow_id.clone(),
        });
        workflow_id
    }

    pub fn workflow_starts(&self) -> &[WorkflowStart] {
        &self.starts
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// What a user implements for an actor type.
pub trait Actor: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Default + Send;

    /// The type name used in actor keys (`counter` in `counter/c1`).
    fn actor_type(&self) -> &'static str;

    /// Runs `method` with `args` on `state`, returning the value the caller receives.
    fn call(&self, state: &mut Self::State, method: &str, args: Value) -> Result<Value, ActorError>;

    /// [`Actor::call`] for methods with side effects (starting a workflow): override it to
    /// handle those methods and pass the others on to `call`, which is what it does by default.
    fn call_with_effects(
        &self,
        _effects: &mut Effects,
        state: &mut Self::State,
        method: &str,
        args: Value,
    ) -> Result<Value, ActorError> {
        self.call(state, method, args)
    }
}

/// The outcome of running a method on stored JSON state.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: Value,
    pub value: Value,
    pub effects: Effects,
}

/// An actor with its state type erased to JSON, so the registry can hold any of them.
pub trait DynActor: Send + Sync {
    fn actor_type(&self) -> &'static str;
    fn default_state(&self) -> Value;
    fn invoke(&self, state: Option<&Value>, method: &str, args: Value) -> Result<Outcome, ActorError>;
}

impl<A: Actor> DynActor for A {
    fn actor_type(&self) -> &'static str {
        Actor::actor_type(self)
    }

    fn default_state(&self) -> Value {
        serde_json::to_value(A::State::default()).unwrap_or(Value::Null)
    }

    fn invoke(&self, state: Option<&Value>, method: &str, args: Value) -> Result<Outcome, ActorError> {
        // Every method of every actor gets an object (or nothing), whatever it does with it.
        if !(args.is_object() || args.is_null()) {
            return Err(not_an_object(method));
        }
        let mut typed: A::State = match state {
            None => A::State::default(),
            Some(stored) => serde_json::from_value(stored.clone()).map_err(|e| {
                ActorError::new(
                    ErrorCode::Internal,
                    format!("stored state does not match actor type: {e}"),
                )
            })?,
        };
        let mut effects = Effects::default();
        let value = self.call_with_effects(&mut effects, &mut typed, method, args)?;
        let state = serde_json::to_value(&typed)
            .map_err(|e| ActorError::new(ErrorCode::Internal, format!("state could not be encoded: {e}")))?;
        Ok(Outcome { state, value, effects })
    }
}

/// Actor types by name.
#[derive(Clone, Default)]
pub struct ActorRegistry {
    actors: HashMap<&'static str, Arc<dyn DynActor>>,
}

impl ActorRegistry {
    /// A registry holding only the read-only `workflow` progress actor type, which every
    /// deployment needs so clients can subscribe to workflow runs.
    pub fn new() -> Self {
        Self::default().with(crate::workflow::WorkflowProgress)
    }

    pub fn with(mut self, actor: impl Actor) -> Self {
        self.register(actor);
        self
    }

    pub fn register(&mut self, actor: impl Actor) {
        self.actors.insert(Actor::actor_type(&actor), Arc::new(actor));
    }

    pub fn get(&self, actor_type: &str) -> Option<&dyn DynActor> {
        self.actors.get(actor_type).map(|a| a.as_ref())
    }
}

impl std::fmt::Debug for ActorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<&str> = self.actors.keys().copied().collect();
        types.sort_unstable();
        f.debug_struct("ActorRegistry").field("types", &types).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_dispatches_by_type_and_method() {
        let registry = ActorRegistry::new().with(Counter).with(TodoList);
        let counter = registry.get("counter").expect("registered");
        let out = counter.invoke(None, "increment", json!({"by": 5})).expect("increments");
        assert_eq!(out.value, json!(5));
        assert_eq!(out.state, json!({"value": 5}));
        let err = counter
            .invoke(Some(&out.state), "explode", Value::Null)
            .expect_err("unknown method");
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(registry.get("nope").is_none());
    }

    #[test]
    fn arguments_must_be_an_object_for_every_method() {
        let registry = ActorRegistry::new().with(Counter).with(TodoList);
        let counter = registry.get("counter").expect("registered");
        for (method, args) in [
            ("increment", json!([5])),
            ("get", json!([])),
            ("reset", json!([])),
            ("increment", json!(5)),
            ("get", json!("x")),
        ] {
            let err = counter.invoke(None, method, args.clone()).expect_err("refused");
            assert_eq!(err.code, ErrorCode::BadRequest, "{method} {args}");
            assert!(err.message.contains("must be a JSON object"), "{}", err.message);
        }
        #[derive(serde::Deserialize, Debug)]
        struct By {
            #[allow(dead_code)]
            by: i64,
        }
        assert!(args::<By>("increment", json!([5])).is_err(), "never by position");
    }

    #[test]
    fn state_of_another_shape_is_an_internal_error_not_a_panic() {
        let registry = ActorRegistry::new().with(Counter).with(TodoList);
        let counter = registry.get("counter").expect("registered");
        let err = counter
            .invoke(Some(&json!({"value": "seven"})), "increment", Value::Null)
            .expect_err("bad state");
        assert_eq!(err.code, ErrorCode::Internal);
    }
}
