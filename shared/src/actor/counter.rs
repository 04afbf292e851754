//! The `counter` example actor: an integer with increment, decrement, reset and get.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{args, Actor, ActorError};

#[derive(Debug, Clone, Copy)]
pub struct Counter;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    pub value: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

const METHODS: [&str; 4] = ["increment", "decrement", "reset", "get"];

impl Actor for Counter {
    type State = CounterState;

    fn actor_type(&self) -> &'static str {
        "counter"
    }

    fn call(&self, state: &mut CounterState, method: &str, raw: Value) -> Result<Value, ActorError> {
        let overflow = || ActorError::bad_request("counter would overflow");
        match method {
            "increment" => {
                let Step { by } = args(method, raw)?;
                state.value = state.value.checked_add(by).ok_or_else(overflow)?;
            }
            "decrement" => {
                let Step { by } = args(method, raw)?;
                state.value = state.value.checked_sub(by).ok_or_else(overflow)?;
            }
            "reset" => {
                let NoArgs {} = args(method, raw)?;
                state.value = 0;
            }
            "get" => {
                let NoArgs {} = args(method, raw)?;
            }
            other => return Err(ActorError::unknown_method("counter", other, &METHODS)),
        }
        Ok(json!(state.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn counts_up_down_and_resets() {
        let mut s = CounterState::default();
        assert_eq!(Counter.call(&mut s, "increment", Value::Null), Ok(json!(1)));
        assert_eq!(Counter.call(&mut s, "increment", json!({"by": 10})), Ok(json!(11)));
        assert_eq!(Counter.call(&mut s, "decrement", json!({"by": 4})), Ok(json!(7)));
        assert_eq!(Counter.call(&mut s, "get", Value::Null), Ok(json!(7)));
        assert_eq!(Counter.call(&mut s, "reset", json!({})), Ok(json!(0)));
    }

    #[test]
    fn refuses_overflow_and_bad_args_without_changing_state() {
        let mut s = CounterState { value: i64::MAX };
        let err = Counter.call(&mut s, "increment", Value::Null).expect_err("overflow");
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert_eq!(s.value, i64::MAX);
        let err = Counter
            .call(&mut s, "increment", json!({"by": "two"}))
            .expect_err("bad type");
        assert_eq!(err.code, ErrorCode::BadRequest);
        let err = Counter
            .call(&mut s, "increment", json!({"step": 2}))
            .expect_err("unknown field");
        assert_eq!(err.code, ErrorCode::BadRequest);
    }
}
