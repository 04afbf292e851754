//! HTTP API (payload format 2.0) requests in and responses out: the route's `trigger` path
//! parameter (or the path after `/hooks/`), lower-case headers (repeated ones joined with
//! commas, as API Gateway does), the body decoded from base64 when it says so.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use serde_json::json;
use statecast::records::now_millis;
use statecast::trigger::{WebhookReply, WebhookRequest};

/// The webhook request an HTTP API event carries, or the refusal to answer at once.
pub fn webhook_request(event: &ApiGatewayV2httpRequest) -> Result<WebhookRequest, WebhookReply> {
    let method = event.request_context.http.method.as_str();
    if method != "POST" {
        return Err(refusal(
            405,
            "bad_request",
            format!("{method} is not allowed; webhooks are POSTed"),
        ));
    }
    let trigger = event
        .path_parameters
        .get("trigger")
        .cloned()
        .or_else(|| {
            let path = event.raw_path.as_deref()?;
            let (_, name) = path.rsplit_once("/hooks/")?;
            Some(name.trim_end_matches('/').to_owned())
        })
        .ok_or_else(|| refusal(404, "not_found", "webhooks are served at /hooks/{trigger}"))?;
    let body = match (&event.body, event.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(text), false) => text.clone().into_bytes(),
        (Some(text), true) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| refusal(400, "bad_request", format!("the body is not valid base64: {e}")))?,
    };
    Ok(WebhookRequest {
        trigger,
        headers: headers(&event.headers),
        body,
        now: now_millis() / 1000,
    })
}

fn headers(map: &HeaderMap) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in map {
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    headers
}

fn refusal(status: u16, code: &str, message: impl Into<String>) -> WebhookReply {
    WebhookReply {
        status,
        body: json!({"error": code, "message": message.into()}),
    }
}

/// The HTTP API response for `reply`: its status and JSON body.
pub fn webhook_response(reply: &WebhookReply) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(reply.status);
    response
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(reply.body.to_string()));
    response
}
