//! `$disconnect` handler: deletes the connection and its subscriptions (best effort, as
//! API Gateway ignores the response; TTL and 410 cleanup catch what is missed).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{connection_id, response};
use statecast::service::DisconnectService;
use tracing::{error, info};

pub async fn handler(
    service: &DisconnectService,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let result = match connection_id(&event.payload) {
        Ok(connection) => service.disconnect(&connection).await.map(|n| (connection, n)),
        Err(e) => Err(e),
    };
    match result {
        Ok((connection, subscriptions)) => {
            info!(%connection, subscriptions, "disconnected");
            Ok(response(200, None))
        }
        Err(e) => {
            error!(error = %statecast::error::chain(&e), "disconnect cleanup failed");
            Ok(response(500, None))
        }
    }
}
