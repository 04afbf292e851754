//! The HTTP API emulator for webhooks: `POST /hooks/{trigger}` becomes the payload format 2.0
//! event API Gateway would send (route key, path parameter, lower-case headers with repeats
//! joined by commas, the body as text or base64), and the handler's response goes back as is.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use statecast::records::now_millis;
use statecast_trigger::TriggerResponse;
use std::net::SocketAddr;

use super::TriggerState;

/// The route API Gateway would match.
pub const ROUTE_KEY: &str = "POST /hooks/{trigger}";

/// The HTTP API event for a webhook request.
pub fn http_event(trigger: &str, headers: &HeaderMap, body: &[u8], source: SocketAddr, host: &str) -> Value {
    let mut joined: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        let entry = joined
            .entry(name.as_str().to_ascii_lowercase())
            .or_insert_with(|| Value::String(String::new()));
        if let Value::String(text) = entry {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(value);
        }
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = now_millis();
    let path = format!("/hooks/{trigger}");
    json!({
        "version": "2.0",
        "routeKey": ROUTE_KEY,
        "rawPath": path,
        "rawQueryString": "",
        "headers": joined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source.ip().to_string(),
                "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": format!("local-{now}-{}", source.port()),
            "routeKey": ROUTE_KEY,
            "stage": "$default",
            "timeEpoch": now,
        },
        "pathParameters": {"trigger": trigger},
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// `POST /hooks/{trigger}`.
pub async fn hook(
    State(state): State<TriggerState>,
    Path(trigger): Path<String>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = http_event(&trigger, &headers, &body, source, &state.host);
    match state.invoke(event).await {
        Ok(TriggerResponse::Http(response)) => {
            let status = u16::try_from(response.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let body = match response.body {
                Some(aws_lambda_events::encodings::Body::Text(text)) => text,
                _ => String::new(),
            };
            (status, [("content-type", "application/json")], body).into_response()
        }
        // What API Gateway answers when the integration fails.
        Ok(_) | Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"message":"Internal Server Error"}"#,
        )
            .into_response(),
    }
}
