//! `$default` handler: one client frame in, the reply frame out as the route response (or,
//! over the message limit, in parts through `@connections`).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{connection_id, request_id, response};
use statecast::protocol::{ErrorCode, ServerMessage};
use statecast::service::MessageService;

pub async fn handler(
    service: &MessageService,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request_id = request_id(&event.payload);
    let frame = match connection_id(&event.payload) {
        Err(e) => Some(e.to_reply(None, &request_id).to_reply_frame()),
        Ok(_) if event.payload.is_base64_encoded => ServerMessage::error(
            None,
            ErrorCode::BadRequest,
            "binary frames are not supported; send JSON text frames",
        )
        .to_reply_frame()
        .into(),
        Ok(connection) => {
            let body = event.payload.body.as_deref().unwrap_or_default();
            service.handle_frame(&connection, body, &request_id).await
        }
    };
    // No body when the reply went out in parts through `@connections`.
    Ok(response(200, frame))
}
