//! Translates AWS SDK errors into [`crate::Error`] at the adapter edge by their typed
//! variants, deciding what the caller does next: a failed condition, a cancelled
//! transaction, a throttle (`rate_limited`), a retryable fault, or a terminal one.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::Error as DynamoError;

use crate::error::Error;

/// A failed DynamoDB request, sorted by what the caller does next.
#[derive(Debug)]
pub(crate) enum DynamoFailure {
    /// The request's condition expression did not hold; the item as it was, when the request
    /// asked for it (`ReturnValuesOnConditionCheckFailure`) and the engine returned it.
    ConditionFailed(Option<crate::dynamo::Item>),
    /// A transaction was cancelled: each item's reason code, in request order (`None` for
    /// an item that was fine). Reason codes are data of the API, not error messages.
    Cancelled(Vec<Option<String>>, Error),
    Other(Error),
}

impl DynamoFailure {
    /// The failure as an error, for callers that expect no condition to fail.
    pub(crate) fn into_error(self, operation: &'static str) -> Error {
        match self {
            DynamoFailure::ConditionFailed(_) => Error::Dependency {
                operation,
                retryable: false,
                source: "a condition that should always hold failed".into(),
            },
            DynamoFailure::Cancelled(_, error) | DynamoFailure::Other(error) => error,
        }
    }
}

/// Sorts a DynamoDB SDK error by its typed variant.
pub(crate) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> DynamoFailure
where
    E: std::error::Error + Send + Sync + 'static,
    DynamoError: From<SdkError<E, HttpResponse>>,
{
    let transient = is_transient(&err);
    let dependency = |retryable: bool, source: DynamoError| Error::Dependency {
        operation,
        retryable,
        source: Box::new(source),
    };
    match DynamoError::from(err) {
        DynamoError::ConditionalCheckFailedException(failed) => DynamoFailure::ConditionFailed(failed.item),
        DynamoError::TransactionCanceledException(cancelled) => {
            let reasons: Vec<Option<String>> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                .collect();
            let busy = reasons.iter().flatten().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            let source = DynamoError::TransactionCanceledException(cancelled);
            DynamoFailure::Cancelled(reasons, dependency(busy, source))
        }
        throttle @ (DynamoError::ProvisionedThroughputExceededException(_)
        | DynamoError::RequestLimitExceeded(_)
        | DynamoError::ThrottlingException(_)
        | DynamoError::LimitExceededException(_)) => DynamoFailure::Other(Error::Throttled {
            operation,
            source: Box::new(throttle),
        }),
        retry @ (DynamoError::InternalServerError(_)
        | DynamoError::TransactionConflictException(_)
        | DynamoError::TransactionInProgressException(_)
        | DynamoError::ReplicatedWriteConflictException(_)) => DynamoFailure::Other(dependency(true, retry)),
        other => DynamoFailure::Other(dependency(transient, other)),
    }
}

/// Wraps a DynamoDB SDK error as [`Error`] (a failed condition is a terminal fault here).
pub(crate) fn dependency<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    DynamoError: From<SdkError<E, HttpResponse>>,
{
    classify(operation, err).into_error(operation)
}

/// A failure of the transport or a 5xx answer: the same request may succeed later.
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(ctx) => ctx.raw().status().is_server_error(),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, ProvisionedThroughputExceededException};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::protocol::ErrorCode;

    fn answer(error: PutItemError, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let raw = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
        SdkError::service_error(error, raw)
    }

    #[test]
    fn a_failed_condition_is_recognised_by_its_type() {
        let failed = PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build());
        assert!(matches!(
            classify("PutItem", answer(failed, 400)),
            DynamoFailure::ConditionFailed(None)
        ));
    }

    #[test]
    fn a_throttle_becomes_rate_limited_and_retryable() {
        let throttled = PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().build(),
        );
        let error = dependency("PutItem", answer(throttled, 400));
        assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
        assert!(error.is_retryable());
        assert_eq!(error.code(), ErrorCode::RateLimited);
        let reply = error.to_reply(None, "req-9").to_json();
        assert!(reply.contains("retry later") && reply.contains("req-9"), "{reply}");
    }

    #[test]
    fn an_unknown_fault_is_retryable_only_on_a_5xx() {
        let unknown = || PutItemError::unhandled("boom");
        let client_side = dependency("PutItem", answer(unknown(), 400));
        assert!(!client_side.is_retryable());
        assert_eq!(client_side.code(), ErrorCode::Internal);
        assert!(dependency("PutItem", answer(unknown(), 503)).is_retryable());
    }
}
