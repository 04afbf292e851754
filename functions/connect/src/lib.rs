//! `$connect` handler: registers the connection, or refuses the upgrade (401/400).
//!
//! A client that offers subprotocols must get one of them selected or it aborts the handshake
//! (browsers, RFC 6455 §4.1) — after API Gateway has run `$connect`. Only `bearer` can be
//! selected, so an offer without it is refused (400) before the connection is stored.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{accepted_subprotocol, connect_request, request_id, response};
use statecast::metrics::{Document, Metric};
use statecast::protocol::ErrorCode;
use statecast::service::ConnectService;
use tracing::{error, info};

pub async fn handler(
    service: &ConnectService,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let subprotocol = accepted_subprotocol(&event.payload);
    if subprotocol.is_none() && offers_subprotocols(&event.payload) {
        info!(
            status = 400,
            "connect refused: no offered subprotocol can be selected (offer `bearer`)"
        );
        return Ok(response(400, None));
    }
    let result = match connect_request(&event.payload) {
        Ok(request) => service.connect(request).await,
        Err(e) => Err(e),
    };
    let status = match result {
        Ok(record) => {
            info!(connection = %record.connection_id, tenant = %record.tenant, "connected");
            service.metrics().emit(
                Document::new()
                    .count(Metric::ConnectionsOpened, 1)
                    .property("requestId", request_id(&event.payload)),
            );
            200
        }
        Err(e) => {
            let status = match e.code() {
                ErrorCode::Unauthorized => 401,
                ErrorCode::BadRequest => 400,
                _ => 500,
            };
            if status == 500 {
                error!(error = %statecast::error::chain(&e), "connect failed");
            } else {
                info!(error = %e, status, "connect refused");
            }
            status
        }
    };
    let mut reply = response(status, None);
    if let (200, Some(protocol)) = (status, subprotocol) {
        reply
            .headers
            .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    }
    Ok(reply)
}

/// Whether the upgrade request names any subprotocol.
fn offers_subprotocols(event: &ApiGatewayWebsocketProxyRequest) -> bool {
    event
        .headers
        .get_all("sec-websocket-protocol")
        .iter()
        .any(|v| v.to_str().map_or(true, |v| v.split(',').any(|p| !p.trim().is_empty())))
}
