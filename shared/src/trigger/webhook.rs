//! `POST /hooks/{trigger}`: an HTTP request in, a status and a JSON body out. The checks run
//! in an order that writes nothing for a refused request: unknown trigger (404), body over
//! the limit (413), verification (401), body not JSON (400), delivery id (400), a template
//! that names nothing in the event (400); only then the call or start.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tracing::{info, warn};

use super::service::{Delivery, FireError, Fired, TriggerService};
use super::verify;
use crate::protocol::ErrorCode;

/// Longest delivery id accepted (the calls' idempotency key limit).
pub const MAX_DELIVERY_ID: usize = 128;

/// A webhook request, as the HTTP adapter reads it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub trigger: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Unix seconds at receipt.
    pub now: i64,
}

/// The answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookReply {
    pub status: u16,
    pub body: Value,
}

impl WebhookReply {
    fn refuse(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": code, "message": message.into()}),
        }
    }
}

impl TriggerService {
    /// Answers one webhook request.
    pub async fn webhook(&self, request: &WebhookRequest) -> WebhookReply {
        let name = &request.trigger;
        let Some((armed, hook)) = self
            .get(name)
            .and_then(|armed| armed.trigger.webhook_settings().map(|hook| (armed, hook)))
        else {
            return WebhookReply::refuse(404, "not_found", format!("no webhook trigger {name:?}"));
        };
        if request.body.len() > hook.max_body_bytes {
            let message = format!(
                "the body is {} bytes; the limit is {}",
                request.body.len(),
                hook.max_body_bytes
            );
            return WebhookReply::refuse(413, "too_large", message);
        }
        if let Err(why) = verify::check(armed, &request.headers, &request.body, request.now) {
            info!(trigger = %name, %why, "webhook refused");
            return WebhookReply::refuse(401, "unauthorized", why);
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(e) => return WebhookReply::refuse(400, "bad_request", format!("the body is not JSON: {e}")),
        };
        let delivery = match &hook.delivery_header {
            None => None,
            Some(header) => match request.headers.get(&header.to_ascii_lowercase()) {
                Some(id) if !id.is_empty() && id.len() <= MAX_DELIVERY_ID => Some(Delivery::new(id, &request.body)),
                Some(_) => {
                    let message = format!("{header} must be 1-{MAX_DELIVERY_ID} characters");
                    return WebhookReply::refuse(400, "bad_request", message);
                }
                None => {
                    return WebhookReply::refuse(400, "bad_request", format!("missing delivery id header {header}"))
                }
            },
        };
        let event = json!({
            "trigger": name,
            "body": body,
            "headers": request.headers,
            "deliveryId": delivery.as_ref().map(|d| d.id.clone()),
            "receivedAt": request.now,
        });
        match self.fire(armed, &event, delivery.as_ref()).await {
            Ok(fired) => {
                let status = match fired {
                    Fired::Called { .. } => 200,
                    Fired::Started { .. } => 202,
                };
                WebhookReply {
                    status,
                    body: fired.to_json(),
                }
            }
            Err(error) => fail(name, &error),
        }
    }
}

/// The status of a failed call or start.
fn fail(trigger: &str, error: &FireError) -> WebhookReply {
    let FireError::Service(service) = error else {
        return WebhookReply::refuse(400, "bad_request", error.to_string());
    };
    let code = service.code();
    let status = match code {
        ErrorCode::BadRequest => 400,
        ErrorCode::Unauthorized => 401,
        ErrorCode::Forbidden => 403,
        // The trigger exists; what its target names does not (e.g. an item id from the body).
        ErrorCode::NotFound => 422,
        ErrorCode::Conflict => 409,
        ErrorCode::TooLarge => 413,
        ErrorCode::RateLimited => 429,
        ErrorCode::Internal => 500,
    };
    if status >= 500 {
        warn!(%trigger, error = %crate::error::chain(service), "webhook failed");
        return WebhookReply::refuse(status, &code.to_string(), "internal error; the sender may retry");
    }
    WebhookReply::refuse(status, &code.to_string(), service.to_string())
}
