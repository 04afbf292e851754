//! Builds the API Gateway WebSocket proxy events API Gateway sends to each route.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

use super::registry::Connection;
use super::Gateway;
use statecast::records::now_millis;

/// The `$connect` event: headers and query string of the upgrade request.
pub fn connect(
    gateway: &Gateway,
    connection: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base(gateway, connection, "$connect", "CONNECT");
    let (single, multi) = header_maps(headers);
    event.insert("headers".into(), single);
    event.insert("multiValueHeaders".into(), multi);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let (single, multi) = query_maps(query);
        event.insert("queryStringParameters".into(), single);
        event.insert("multiValueQueryStringParameters".into(), multi);
    }
    decode(event)
}

/// A `MESSAGE` event for `route_key` carrying one frame.
pub fn message(
    gateway: &Gateway,
    connection: &Connection,
    route_key: &str,
    body: String,
    is_base64: bool,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base(gateway, connection, route_key, "MESSAGE");
    event["requestContext"]["messageId"] = Value::from(request_id());
    event.insert("body".into(), Value::from(body));
    event.insert("isBase64Encoded".into(), Value::from(is_base64));
    decode(event)
}

/// The `$disconnect` event with the close code and reason.
pub fn disconnect(
    gateway: &Gateway,
    connection: &Connection,
    code: u16,
    reason: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base(gateway, connection, "$disconnect", "DISCONNECT");
    event["requestContext"]["disconnectStatusCode"] = Value::from(code);
    event["requestContext"]["disconnectReason"] = Value::from(reason);
    decode(event)
}

fn base(gateway: &Gateway, connection: &Connection, route_key: &str, event_type: &str) -> Map<String, Value> {
    let now = now_millis();
    let request_id = request_id();
    let context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": gateway.stage,
        "connectedAt": connection.connected_at,
        "requestTimeEpoch": now,
        "identity": { "sourceIp": connection.source_ip, "userAgent": connection.user_agent },
        "requestId": request_id,
        "domainName": gateway.domain_name,
        "connectionId": connection.id,
        "apiId": "local",
    });
    let mut context = context;
    if let Some(authorizer) = connection.authorizer.get() {
        context["authorizer"] = Value::Object(authorizer.clone());
    }
    let mut event = Map::new();
    event.insert("requestContext".into(), context);
    event.insert("isBase64Encoded".into(), Value::from(false));
    event
}

fn decode(event: Map<String, Value>) -> ApiGatewayWebsocketProxyRequest {
    // The shape above is what aws_lambda_events reads; a failure here is a bug in this file.
    serde_json::from_value(Value::Object(event)).unwrap_or_default()
}

pub(super) fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            multi
                .entry(name.as_str().to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    split(multi)
}

pub(super) fn query_maps(query: &str) -> (Value, Value) {
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        multi
            .entry(percent_decode(key))
            .or_default()
            .push(percent_decode(value));
    }
    split(multi)
}

/// API Gateway's single-value maps keep the last value of each name.
fn split(multi: BTreeMap<String, Vec<String>>) -> (Value, Value) {
    let single: Map<String, Value> = multi
        .iter()
        .filter_map(|(k, v)| v.last().map(|last| (k.clone(), Value::from(last.clone()))))
        .collect();
    (Value::Object(single), json!(multi))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).map(|hex| u8::from_str_radix(hex, 16)) {
                Some(Ok(byte)) => {
                    out.push(byte);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn request_time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_millis());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_like_api_gateway() {
        let (single, multi) = query_maps("token=a%2Bb&x=1&x=2&flag&name=J%C3%BCrgen+S");
        assert_eq!(single, json!({"token":"a+b","x":"2","flag":"","name":"Jürgen S"}));
        assert_eq!(multi["x"], json!(["1", "2"]));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
