//! Lambda event adapters: API Gateway WebSocket events in, proxy responses out, and the
//! partial-batch responses of stream and queue handlers. Stream records are decoded by
//! [`crate::stream_events`].

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::service::ConnectRequest;

/// The connection a WebSocket event belongs to.
pub fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Result<ConnectionId> {
    let id = event.request_context.connection_id.clone().unwrap_or_default();
    ConnectionId::new(id).map_err(Error::from)
}

/// The API Gateway request id, for logs and `internal` error replies.
pub fn request_id(event: &ApiGatewayWebsocketProxyRequest) -> String {
    event
        .request_context
        .request_id
        .clone()
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Reads a `$connect` event: connection id, `tenant`/`sub` from the authorizer context.
pub fn connect_request(event: &ApiGatewayWebsocketProxyRequest) -> Result<ConnectRequest> {
    let context = &event.request_context;
    let field = |name: &str| {
        context
            .authorizer
            .fields
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(ConnectRequest {
        connection_id: connection_id(event)?,
        tenant: field("tenant"),
        principal: field("sub").or_else(|| field("principalId")),
        connected_at: context.connected_at,
    })
}

/// The subprotocol to accept on `$connect`: a browser that sends its token as
/// `Sec-WebSocket-Protocol: bearer, <jwt>` must get `bearer` back or it drops the connection.
pub fn accepted_subprotocol(event: &ApiGatewayWebsocketProxyRequest) -> Option<&'static str> {
    let offered = event.headers.get_all("sec-websocket-protocol");
    offered
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(BEARER_SUBPROTOCOL))
        .then_some(BEARER_SUBPROTOCOL)
}

/// The subprotocol name that marks a token carried in `Sec-WebSocket-Protocol`.
pub const BEARER_SUBPROTOCOL: &str = "bearer";

/// A proxy response with `status` and an optional body (the route response a client gets).
pub fn response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = body.map(Body::Text);
    response
}

/// The partial-batch response naming the records to retry.
pub fn batch_response(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            failure
        })
        .collect();
    response
}

/// The partial batch response of an SQS handler naming the messages to receive again.
pub fn sqs_batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
