//! `$connect` handler: registers the connection, or refuses the upgrade (401/400).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{accepted_subprotocol, connect_request, response};
use statecast::protocol::ErrorCode;
use statecast::service::ConnectService;
use tracing::{error, info};

pub async fn handler(
    service: &ConnectService,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let subprotocol = accepted_subprotocol(&event.payload);
    let result = match connect_request(&event.payload) {
        Ok(request) => service.connect(request).await,
        Err(e) => Err(e),
    };
    let status = match result {
        Ok(record) => {
            info!(connection = %record.connection_id, tenant = %record.tenant, "connected");
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
