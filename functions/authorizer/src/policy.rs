//! The authorizer's answer: Allow `execute-api:Invoke` on the method ARN with the identity as
//! context, or Deny.

use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::{json, Value};

use crate::claims::Identity;

const INVOKE: &str = "execute-api:Invoke";
/// `principalId` of a denied request (its token's `sub` is not to be trusted).
pub const DENIED_PRINCIPAL: &str = "unauthenticated";

/// Allows the `$connect` call; `$connect` reads `tenant` and `sub` from the context.
pub(crate) fn allow(identity: &Identity, method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let context = json!({ "tenant": identity.tenant.as_str(), "sub": identity.sub });
    response(&identity.sub, IamPolicyEffect::Allow, method_arn, context)
}

/// Denies the call (API Gateway answers 403).
pub(crate) fn deny(method_arn: Option<&str>) -> ApiGatewayCustomAuthorizerResponse {
    response(
        DENIED_PRINCIPAL,
        IamPolicyEffect::Deny,
        method_arn.unwrap_or("*"),
        json!({}),
    )
}

fn response(
    principal: &str,
    effect: IamPolicyEffect,
    resource: &str,
    context: Value,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec![INVOKE.to_owned()];
    statement.effect = effect;
    statement.resource = vec![resource.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = policy;
    response.context = context;
    response
}
