//! Dev tokens: HS256 tokens with a tenant and a subject, for local mode and tests.

use std::time::Duration;

use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::config::DEFAULT_TENANT_CLAIM;

/// The token could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("the token could not be signed")]
pub struct MintError(#[source] jsonwebtoken::errors::Error);

/// An HS256 token for `tenant` (claim `tenant`) and `sub`, valid from now for `ttl`.
pub fn mint_hs256(
    secret: &str,
    tenant: &str,
    sub: &str,
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, MintError> {
    let now = get_current_timestamp();
    let mut claims = Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert(DEFAULT_TENANT_CLAIM.into(), tenant.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(ttl.as_secs()).into());
    if let Some(issuer) = issuer {
        claims.insert("iss".into(), issuer.into());
    }
    if let Some(audience) = audience {
        claims.insert("aud".into(), audience.into());
    }
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), &Value::Object(claims), &key).map_err(MintError)
}
