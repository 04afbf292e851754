//! Translates AWS SDK errors into [`crate::Error`] at the adapter edge, deciding retryability.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// Service error codes that mean "slow down or try again", common to DynamoDB and API Gateway.
const RETRYABLE_CODES: [&str; 8] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Wraps `err` as [`Error::Dependency`], keeping it as the source.
pub(crate) fn dependency<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &err {
        SdkError::ServiceError(ctx) => {
            RETRYABLE_CODES.contains(&ctx.err().code().unwrap_or_default()) || ctx.raw().status().is_server_error()
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => false,
    };
    Error::Dependency {
        operation,
        retryable,
        source: Box::new(err),
    }
}
