//! `call` with an idempotency key: the first call's result is recorded with its state change
//! (same transaction), and every repeat within the retention window — after a lost reply, or
//! at the same moment on another connection — gets that result without running the method.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{ActorKey, Version};
use crate::records::{now_millis, CallRecord};
use crate::service::MessageService;

/// What to record a call's result under.
pub(super) struct Recording {
    call_key: String,
    args_digest: String,
    expires_at: i64,
}

impl Recording {
    pub(super) fn record(&self, actor: &ActorKey, method: &str, value: &Value, version: Version) -> CallRecord {
        CallRecord {
            call_key: self.call_key.clone(),
            actor_key: actor.clone(),
            method: method.to_owned(),
            args_digest: self.args_digest.clone(),
            value: value.to_string(),
            version,
            expires_at: self.expires_at,
        }
    }
}

impl MessageService {
    /// Runs the call once per `idempotency_key` (scoped to the actor's tenant).
    pub(super) async fn call_once(
        &self,
        key: &ActorKey,
        method: &str,
        args: Value,
        idempotency_key: &str,
    ) -> Result<(Value, Version)> {
        let args_digest = digest(&args);
        self.call_once_digest(key, method, args, idempotency_key, args_digest)
            .await
    }

    /// [`Self::call_once`] with the digest a repeat must match given by the caller (a
    /// trigger's digest covers the whole delivery, not only the arguments built from it).
    pub(super) async fn call_once_digest(
        &self,
        key: &ActorKey,
        method: &str,
        args: Value,
        idempotency_key: &str,
        args_digest: String,
    ) -> Result<(Value, Version)> {
        let call_key = format!("{}/{idempotency_key}", key.tenant());
        if let Some(first) = self.actors.recorded_call(&call_key).await? {
            return replay(first, key, method, &args_digest, idempotency_key);
        }
        let recording = Recording {
            call_key: call_key.clone(),
            args_digest: args_digest.clone(),
            expires_at: now_millis() / 1000 + self.settings.call_key_retention.as_secs() as i64,
        };
        match self.call(key, method, args, Some(&recording)).await {
            // The other copy won the race: its result is the one.
            Err(Error::CallRecorded(_)) => match self.actors.recorded_call(&call_key).await? {
                Some(first) => replay(first, key, method, &args_digest, idempotency_key),
                None => Err(Error::CallRecorded(idempotency_key.to_owned())),
            },
            other => other,
        }
    }
}

/// The first call's result, if the repeat is the same call.
fn replay(
    first: CallRecord,
    key: &ActorKey,
    method: &str,
    args_digest: &str,
    idempotency_key: &str,
) -> Result<(Value, Version)> {
    if &first.actor_key != key || first.method != method || first.args_digest != args_digest {
        let what = if &first.actor_key != key || first.method != method {
            format!("{}.{}", first.actor_key.address(), first.method)
        } else {
            format!("{}.{} with other arguments", first.actor_key.address(), first.method)
        };
        return Err(Error::KeyReused {
            key: idempotency_key.to_owned(),
            first: what,
        });
    }
    let value = serde_json::from_str(&first.value).map_err(|e| Error::Corrupt {
        what: "recorded call",
        detail: e.to_string(),
    })?;
    Ok((value, first.version))
}

/// A digest of the arguments' canonical JSON (object keys sorted).
fn digest(args: &Value) -> String {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args.clone()
    };
    let hash = Sha256::digest(args.to_string().as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_arguments_have_equal_digests_whatever_their_key_order() {
        assert_eq!(
            digest(&json!({"a": 1, "b": [1, 2]})),
            digest(&json!({"b": [1, 2], "a": 1}))
        );
        assert_ne!(digest(&json!({"a": 1})), digest(&json!({"a": 2})));
        assert_eq!(digest(&Value::Null), digest(&json!({})), "no args is an empty object");
    }
}
