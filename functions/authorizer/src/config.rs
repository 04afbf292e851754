//! Authorizer configuration from the environment: keys, expected issuer/audience, leeway, tenant claim.
//!
//! | variable | meaning |
//! |---|---|
//! | `JWT_SECRET` | HS256 secret (at least 32 bytes) |
//! | `JWKS_URL` | RS256/ES256 keys (`https://`, or `http://` on loopback only) |
//! | `JWT_ISSUER`, `JWT_AUDIENCE` | checked (and required in the token) when set |
//! | `JWT_LEEWAY_SECONDS` | clock skew allowed on `exp`/`nbf`: 30, at most 300 |
//! | `JWT_TENANT_CLAIM` | claim holding the tenant: `tenant` |
//! | `JWKS_REFRESH_SECONDS` | least time between two JWKS fetches for an unknown `kid`: 30 |
//!
//! At least one of `JWT_SECRET` and `JWKS_URL` is required. Empty values count as unset.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

/// Default claim that names the tenant.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant";
/// Default clock skew allowed on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway accepted; larger values are capped to it.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default least time between two JWKS fetches triggered by unknown key ids.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(30);
/// Time limit of one JWKS fetch (connect, TLS and body).
pub const DEFAULT_JWKS_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest HS256 secret accepted (RFC 7518 §3.2: a key at least as long as the hash).
pub const MIN_SECRET_BYTES: usize = 32;

/// What the authorizer accepts.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 tokens verify against this secret; unset refuses HS256.
    pub secret: Option<HmacSecret>,
    /// RS256/ES256 tokens verify against this key set; unset refuses them.
    pub jwks_url: Option<Url>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`; capped at [`MAX_LEEWAY`].
    pub leeway: Duration,
    pub tenant_claim: String,
    pub jwks_refresh_interval: Duration,
    pub jwks_timeout: Duration,
}

/// An HS256 secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HmacSecret(String);

impl HmacSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

/// The configuration cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("set JWT_SECRET and/or JWKS_URL: without a key no token can be verified")]
    NoKey,
    #[error("JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes")]
    WeakSecret,
    #[error("{var}={value:?} is not a whole number of seconds")]
    NotSeconds {
        var: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("JWKS_URL={value:?} is not a URL")]
    BadJwksUrl {
        value: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("JWKS_URL={0} must use https (plain http is allowed on loopback only)")]
    InsecureJwksUrl(Url),
    #[error("the JWKS HTTP client could not be built")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let seconds = |name: &'static str, default: Duration| match var(name) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<u64>() {
                Ok(n) => Ok(Duration::from_secs(n)),
                Err(source) => Err(ConfigError::NotSeconds {
                    var: name,
                    value,
                    source,
                }),
            },
        };
        let jwks_url = match var("JWKS_URL") {
            None => None,
            Some(value) => Some(Url::parse(value.trim()).map_err(|e| ConfigError::BadJwksUrl {
                value,
                source: Box::new(e),
            })?),
        };
        let config = AuthConfig {
            secret: var("JWT_SECRET").map(HmacSecret),
            jwks_url,
            issuer: var("JWT_ISSUER"),
            audience: var("JWT_AUDIENCE"),
            leeway: seconds("JWT_LEEWAY_SECONDS", DEFAULT_LEEWAY)?.min(MAX_LEEWAY),
            tenant_claim: var("JWT_TENANT_CLAIM").unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_owned()),
            jwks_refresh_interval: seconds("JWKS_REFRESH_SECONDS", DEFAULT_JWKS_REFRESH)?,
            jwks_timeout: DEFAULT_JWKS_TIMEOUT,
        };
        config.check()?;
        Ok(config)
    }

    /// Refuses a configuration without a key, with a short secret, or with a plain-http JWKS elsewhere than loopback.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.secret.is_none() && self.jwks_url.is_none() {
            return Err(ConfigError::NoKey);
        }
        if self
            .secret
            .as_ref()
            .is_some_and(|s| s.as_bytes().len() < MIN_SECRET_BYTES)
        {
            return Err(ConfigError::WeakSecret);
        }
        match &self.jwks_url {
            Some(url) if !is_secure(url) => Err(ConfigError::InsecureJwksUrl(url.clone())),
            _ => Ok(()),
        }
    }
}

fn is_secure(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let loopback = || {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    match url.scheme() {
        "https" => true,
        "http" => loopback(),
        _ => false,
    }
}
