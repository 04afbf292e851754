//! `$default` handler: one client frame in, the reply frame out as the route response (or,
//! over the message limit, in parts through `@connections`).
//!
//! The frame is handled inside a [`trace::scope`] of the request id (and X-Ray trace id), so a
//! change it writes carries them to the fan-out's log lines.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{connection_id, request_id, response};
use statecast::protocol::{ErrorCode, ServerMessage};
use statecast::service::MessageService;
use statecast::trace::{self, Trace};

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
            let xray = Trace::xray_header(event.context.xray_trace_id.as_deref());
            let trace = Trace::new(request_id.as_str(), xray.as_deref());
            trace::scope(trace, service.handle_frame(&connection, body, &request_id)).await
        }
    };
    // No body when the reply went out in parts through `@connections`.
    Ok(response(200, frame))
}
