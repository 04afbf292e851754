//! Why a token was refused: one variant per reason, so logs and tests can tell them apart.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Algorithm;
use statecast::ids::IdError;

/// A token was refused (every variant answers a Deny policy, except [`AuthError::BareSubprotocol`]:
/// the handler fails with [`Unauthorized`](crate::Unauthorized), 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no token in the `token` query parameter or the Sec-WebSocket-Protocol header")]
    Missing,
    #[error(
        "a token offered alone in Sec-WebSocket-Protocol is refused: offer `bearer, <token>` \
         (the $connect answer can only select `bearer`, and browsers abort a handshake that selects none)"
    )]
    BareSubprotocol,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token has no `exp` claim")]
    MissingExpiry,
    #[error("token issuer is missing or not the configured one")]
    WrongIssuer,
    #[error("token audience is missing or not the configured one")]
    WrongAudience,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    #[error("no {alg:?} key with kid {kid:?} in the JWKS")]
    UnknownKey { kid: Option<String>, alg: Algorithm },
    #[error("token has no `{claim}` claim")]
    MissingTenant { claim: String },
    #[error("token's `{claim}` claim is not a valid tenant id")]
    InvalidTenant {
        claim: String,
        #[source]
        source: Option<IdError>,
    },
    #[error("token has no `sub` claim")]
    MissingSubject,
    #[error("the JWKS could not be loaded")]
    Jwks(#[from] JwksError),
}

/// Why the JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS request failed")]
    Request(#[source] reqwest::Error),
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("JWKS is not a JSON key set")]
    Body(#[source] serde_json::Error),
}

impl AuthError {
    /// Classifies a `jsonwebtoken` failure for a token whose header named `alg`.
    pub(crate) fn from_jwt(e: jsonwebtoken::errors::Error, alg: Algorithm) -> Self {
        match e.into_kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "sub" => AuthError::MissingSubject,
                "iss" => AuthError::WrongIssuer,
                "aud" => AuthError::WrongAudience,
                "exp" => AuthError::MissingExpiry,
                _ => AuthError::Malformed("a required claim is missing"),
            },
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                AuthError::UnsupportedAlgorithm(format!("{alg:?}"))
            }
            ErrorKind::InvalidClaimFormat(_) => AuthError::Malformed("a registered claim has the wrong type"),
            ErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => AuthError::Malformed("a part is not JSON"),
            ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
                AuthError::BadSignature
            }
            _ => AuthError::Malformed("token could not be decoded"),
        }
    }

    /// Whether the fault is ours (JWKS unreachable) rather than the token's.
    pub fn is_operational(&self) -> bool {
        matches!(self, AuthError::Jwks(_))
    }
}
