//! Token verification: the key is chosen by the token's algorithm, and each key verifies one
//! algorithm only (HS256 → `JWT_SECRET`, RS256/ES256 → the JWKS), so no HS/RS confusion.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::claims::{self, Identity};
use crate::config::{AuthConfig, ConfigError, MAX_LEEWAY};
use crate::error::AuthError;
use crate::header::{self, TokenHeader};
use crate::jwks::Jwks;

/// Verifies tokens; build one per container and share it.
pub struct Authorizer {
    hmac: Option<Arc<DecodingKey>>,
    jwks: Option<Jwks>,
    /// Every check but the algorithm, which is set per token.
    validation: Validation,
    tenant_claim: String,
}

impl Authorizer {
    pub fn new(config: AuthConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let jwks = match &config.jwks_url {
            Some(url) => Some(Jwks::new(
                url.clone(),
                config.jwks_timeout,
                config.jwks_refresh_interval,
            )?),
            None => None,
        };
        Ok(Self {
            hmac: config
                .secret
                .as_ref()
                .map(|s| Arc::new(DecodingKey::from_secret(s.as_bytes()))),
            jwks,
            validation: validation(&config),
            tenant_claim: config.tenant_claim,
        })
    }

    /// Verifies `token` (signature, `exp`, `nbf`, `iss`, `aud`) and reads its identity.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = header::inspect(token)?;
        let key = self.key_for(&header).await?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::from_jwt(e, header.alg))?;
        claims::identity(&data.claims, &self.tenant_claim)
    }

    /// The key bound to the token's algorithm; an algorithm without a configured key is refused.
    async fn key_for(&self, header: &TokenHeader) -> Result<Arc<DecodingKey>, AuthError> {
        match (header.alg, &self.hmac, &self.jwks) {
            (Algorithm::HS256, Some(secret), _) => Ok(Arc::clone(secret)),
            (Algorithm::RS256 | Algorithm::ES256, _, Some(jwks)) => jwks.key(header.kid.as_deref(), header.alg).await,
            (alg, _, _) => Err(AuthError::UnsupportedAlgorithm(format!("{alg:?}"))),
        }
    }
}

/// `exp`, `nbf` within the leeway; `sub` required; `iss` and `aud` required and checked when configured.
fn validation(config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.validate_aud = config.audience.is_some();
    if let Some(audience) = &config.audience {
        validation.set_audience(&[audience]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}
