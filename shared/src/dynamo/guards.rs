//! Action guards in the calls table (it has no stream, and TTL clears old rate slots): one
//! item per breaker, `#guard/breaker/<action>`, changed only at the version read; one item per
//! action and second, `#guard/rate/<action>/<second>`, whose counter a conditional `ADD` takes
//! up to the limit. `#` cannot start a tenant id, so these keys never meet a call's.

use serde::{Deserialize, Serialize};

use super::{from_item, s, to_item, DynamoStore};
use crate::error::Result;
use crate::sdk_error::{classify, dependency, DynamoFailure};
use crate::workflow::guard::Breaker;

/// How long a rate slot item stays before TTL may delete it.
const SLOT_TTL_SECS: i64 = 120;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BreakerItem {
    call_key: String,
    #[serde(flatten)]
    breaker: Breaker,
}

fn breaker_key(action: &str) -> String {
    format!("#guard/breaker/{action}")
}

impl DynamoStore {
    pub(super) async fn load_breaker(&self, action: &str) -> Result<Option<Breaker>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.calls)
            .key("callKey", s(breaker_key(action)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem breaker", e))?;
        let item: Option<BreakerItem> = output.item.map(|i| from_item(i, "breaker")).transpose()?;
        Ok(item.map(|i| i.breaker))
    }

    pub(super) async fn store_breaker(&self, action: &str, next: &Breaker) -> Result<bool> {
        let item = BreakerItem {
            call_key: breaker_key(action),
            breaker: next.clone(),
        };
        let request = self
            .client
            .put_item()
            .table_name(&self.tables.calls)
            .set_item(Some(to_item(&item, "breaker")?));
        let request = match next.version {
            0 | 1 => request.condition_expression("attribute_not_exists(callKey)"),
            n => request
                .condition_expression("version = :read")
                .expression_attribute_values(":read", aws_sdk_dynamodb::types::AttributeValue::N((n - 1).to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match classify("PutItem breaker", e) {
                DynamoFailure::ConditionFailed(_) => Ok(false),
                other => Err(other.into_error("PutItem breaker")),
            },
        }
    }

    pub(super) async fn take_slot(&self, action: &str, second: i64, limit: u32) -> Result<bool> {
        use aws_sdk_dynamodb::types::AttributeValue::N;
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.calls)
            .key("callKey", s(format!("#guard/rate/{action}/{second}")))
            .update_expression("ADD taken :one SET expiresAt = :expires")
            .condition_expression("attribute_not_exists(taken) OR taken < :limit")
            .expression_attribute_values(":one", N("1".into()))
            .expression_attribute_values(":limit", N(limit.to_string()))
            .expression_attribute_values(":expires", N((second + SLOT_TTL_SECS).to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match classify("UpdateItem rate slot", e) {
                DynamoFailure::ConditionFailed(_) => Ok(false),
                other => Err(other.into_error("UpdateItem rate slot")),
            },
        }
    }
}
