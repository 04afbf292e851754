//! The `$connect` authorizer step: builds API Gateway's REQUEST authorizer event, runs the
//! authorizer and turns its IAM policy into "upgrade" (with the context every later event of
//! the connection carries) or a refusal: 403 for Deny, 401 for an `Unauthorized` error, 500
//! for any other error.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse};
use aws_lambda_events::iam::IamPolicyEffect;
use axum::http::{HeaderMap, StatusCode};
use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use tracing::{info, warn};

use super::events::{header_maps, query_maps};
use super::registry::Connection;
use super::Gateway;

/// A REQUEST authorizer: its event in, its policy out.
pub type AuthorizerFn = Arc<
    dyn Fn(
            ApiGatewayCustomAuthorizerRequestTypeRequest,
        ) -> BoxFuture<'static, Result<ApiGatewayCustomAuthorizerResponse, lambda_runtime::Error>>
        + Send
        + Sync,
>;

/// Runs the authorizer (when one is configured); on Allow stores its context on `connection`.
pub async fn authorize(
    gateway: &Gateway,
    connection: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), StatusCode> {
    let Some(authorizer) = &gateway.routes.authorizer else {
        return Ok(());
    };
    let response = authorizer(request(gateway, connection, headers, query))
        .await
        .map_err(|e| {
            // API Gateway answers 401 to an authorizer error whose message is `Unauthorized`.
            if e.to_string() == "Unauthorized" {
                info!(connection = %connection.id, "authorizer answered Unauthorized");
                return StatusCode::UNAUTHORIZED;
            }
            warn!(connection = %connection.id, error = %e, "authorizer failed");
            StatusCode::INTERNAL_SERVER_ERROR
        })?;
    let statements = &response.policy_document.statement;
    let allowed = statements.iter().any(|s| s.effect == IamPolicyEffect::Allow)
        && !statements.iter().any(|s| s.effect == IamPolicyEffect::Deny);
    if !allowed {
        info!(connection = %connection.id, "authorizer denied $connect");
        return Err(StatusCode::FORBIDDEN);
    }
    let mut context = match response.context {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    context.insert(
        "principalId".into(),
        Value::from(response.principal_id.unwrap_or_default()),
    );
    let _ = connection.authorizer.set(context);
    Ok(())
}

fn request(
    gateway: &Gateway,
    connection: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let (single_headers, multi_headers) = header_maps(headers);
    let (single_query, multi_query) = query_maps(query.unwrap_or_default());
    let event = json!({
        "type": "REQUEST",
        "methodArn": format!("arn:aws:execute-api:local:000000000000:local/{}/$connect", gateway.stage),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "stage": gateway.stage,
            "connectionId": connection.id,
            "domainName": gateway.domain_name,
            "apiId": "local",
            "identity": { "sourceIp": connection.source_ip, "userAgent": connection.user_agent },
        },
    });
    // The shape above is what aws_lambda_events reads; a failure here is a bug in this file.
    serde_json::from_value(event).unwrap_or_default()
}
