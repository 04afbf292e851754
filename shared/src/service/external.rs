//! Calls from outside any connection (webhooks, queues, schedules): the tenant is the
//! caller's to give, and a delivery id makes the call happen once.

use serde_json::Value;

use crate::error::Result;
use crate::ids::{TenantId, Version};
use crate::service::MessageService;

/// Makes a call happen once: a repeat with the same `key` replays the first result, and a
/// repeat whose `digest` differs is a conflict.
#[derive(Debug, Clone)]
pub struct Once {
    pub key: String,
    pub digest: String,
}

impl MessageService {
    /// Calls `method` of `actor` (`type/id`) in `tenant`, once per `once` when given.
    pub async fn call_as(
        &self,
        tenant: &TenantId,
        actor: &str,
        method: &str,
        args: Value,
        once: Option<Once>,
    ) -> Result<(Value, Version)> {
        let key = self.resolve(tenant, actor)?;
        match once {
            Some(Once {
                key: idempotency_key,
                digest,
            }) => {
                self.call_once_digest(&key, method, args, &idempotency_key, digest)
                    .await
            }
            None => self.call(&key, method, args, None).await,
        }
    }
}
