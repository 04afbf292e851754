//! The `@connections` adapter: posts frames to WebSocket clients through API Gateway's
//! management API (`aws-sdk-apigatewaymanagement`).

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::ports::ConnectionSender;
use crate::sdk_error::is_transient;

/// Posts with one shared client; build it with the stage's `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
/// endpoint (or the local gateway's).
#[derive(Clone, Debug)]
pub struct ApiGatewaySender {
    client: Client,
}

impl ApiGatewaySender {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A sender on `sdk`'s region and credentials, posting to `endpoint` (the stage URL).
    pub fn on_endpoint<C>(sdk: C, endpoint: &str) -> Self
    where
        aws_sdk_apigatewaymanagement::config::Builder: From<C>,
    {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Self::new(Client::from_conf(config))
    }
}

#[async_trait]
impl ConnectionSender for ApiGatewaySender {
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(to.as_str())
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => Err(Error::ConnectionGone(to.clone())),
                Some(PostToConnectionError::PayloadTooLargeException(_)) => Err(Error::TooLarge(format!(
                    "a {} byte frame is over API Gateway's message limit",
                    frame.len()
                ))),
                Some(PostToConnectionError::LimitExceededException(_)) => Err(Error::Throttled {
                    operation: "PostToConnection",
                    source: Box::new(e),
                }),
                _ => Err(Error::Dependency {
                    operation: "PostToConnection",
                    retryable: is_transient(&e),
                    source: Box::new(e),
                }),
            },
        }
    }
}
