//! Counts DynamoDB requests: an SDK interceptor that logs the operation name of every
//! request just before it goes on the wire (once per attempt, so a retry counts as the extra
//! request it is).

use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Logs the operation name of every DynamoDB request just before it goes on the wire (once
/// per attempt, so a retry would count as the extra request it is).
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    /// The operations transmitted since the last call, in order.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or_else(|| "<no operation metadata>".to_owned(), |m| m.name().to_owned());
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(operation);
        Ok(())
    }
}

impl RequestLog {
    /// A DynamoDB client on `sdk` whose requests go to this log.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}
