//! Lambda REQUEST authorizer for the WebSocket `$connect` route: reads a JWT from the `token`
//! query parameter or the `Sec-WebSocket-Protocol` header, verifies it, and answers an IAM policy
//! whose context carries the `tenant` and `sub` the `$connect` handler stores.
//!
//! # Layout
//!
//! - [`source`]: where the token is (`token_from_request`); local mode reuses it.
//! - [`config`]: `AuthConfig` from the environment.
//! - [`verify`]: the `Authorizer`: key by algorithm, signature and claim checks.
//! - `header`: the token's shape, `alg` and `kid`; `keyset`/`jwks`: the JWKS and its cache.
//! - `claims`: the [`Identity`] of verified claims; [`error`]: why a token was refused.
//! - `policy`: Allow/Deny responses; [`mint`]: HS256 dev tokens.

mod claims;
pub mod config;
pub mod error;
mod header;
mod jwks;
mod keyset;
pub mod mint;
mod policy;
pub mod source;
pub mod verify;

use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse};
use lambda_runtime::{Error, LambdaEvent};
use tracing::{info, warn};

pub use claims::Identity;
pub use config::{AuthConfig, ConfigError};
pub use error::{AuthError, JwksError};
pub use mint::{mint_hs256, MintError};
pub use policy::DENIED_PRINCIPAL;
pub use source::{token_from_request, TokenSource};
pub use verify::Authorizer;

/// The authorizer's failure that API Gateway answers with 401 Unauthorized: a Lambda
/// authorizer error whose message is exactly `Unauthorized` (a Deny policy answers 403).
#[derive(Debug, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

/// Answers Allow for a valid token and Deny for anything else; never fails on a bad token.
/// A token offered alone as a subprotocol fails with [`Unauthorized`] (401) before it is
/// verified: a browser would abort that handshake only after `$connect` stored the connection.
pub async fn handler(
    auth: &Authorizer,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<ApiGatewayCustomAuthorizerResponse, Error> {
    let request = &event.payload;
    let source = token_from_request(&request.query_string_parameters, &request.headers);
    let verified = match &source {
        Some(TokenSource::BareSubprotocol(_)) => {
            info!(reason = %AuthError::BareSubprotocol, "unauthorized (401)");
            return Err(Unauthorized.into());
        }
        Some(source) => auth.verify(source.token()).await,
        None => Err(AuthError::Missing),
    };
    let method_arn = request.method_arn.as_deref();
    Ok(match (verified, method_arn) {
        (Ok(identity), Some(arn)) => {
            info!(tenant = %identity.tenant, sub = %identity.sub, source = ?source, "allowed");
            policy::allow(&identity, arn)
        }
        (Ok(identity), None) => {
            warn!(sub = %identity.sub, "denied: the event has no methodArn to allow");
            policy::deny(None)
        }
        (Err(e), arn) => {
            let reason = statecast::error::chain(&e);
            if e.is_operational() {
                warn!(%reason, "denied");
            } else {
                info!(%reason, source = ?source, "denied");
            }
            policy::deny(arn)
        }
    })
}
