//! The `@connections` adapter: posts frames to WebSocket clients through API Gateway's
//! management API (`aws-sdk-apigatewaymanagement`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
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
    ///
    /// Tuned for many small posts (`cargo bench -p statecast --bench sdk_post` measures the
    /// CPU each costs):
    /// - no stalled-stream protection, which wraps each body in a throughput monitor with a
    ///   timer; a 5 s attempt timeout bounds a stalled post instead;
    /// - no SDK retries: fan-outs and room broadcasts post through [`crate::service::Poster`],
    ///   which retries a throttled or failed connection itself after a back-off and halves its
    ///   concurrency on each 429. SDK retries would hide those 429s from it, sleep in its
    ///   slots, and multiply its tries (3 per try). A reply's parts are posted once; a failure
    ///   becomes a retryable error reply.
    pub fn on_endpoint<C>(sdk: C, endpoint: &str) -> Self
    where
        aws_sdk_apigatewaymanagement::config::Builder: From<C>,
    {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::disabled())
            .build();
        Self::new(Client::from_conf(config))
    }
}

/// The SDK's default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);
/// A post answers in tens of milliseconds; one stalled this long is failed (retryably).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

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
                // A 429 without the modeled error type is a throttle too: no SDK retry covers it.
                _ if e.raw_response().is_some_and(|r| r.status().as_u16() == 429) => Err(Error::Throttled {
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
