//! The usable keys of a JWKS, each bound to the one algorithm it may verify.
//!
//! Only RSA keys (RS256) and P-256 keys (ES256) meant for signatures are kept; symmetric (`oct`)
//! entries are dropped, so a JWKS can never make an HMAC secret out of a public key.

use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tracing::debug;

/// One verification key and the algorithm it is bound to.
struct BoundKey {
    kid: Option<String>,
    alg: Algorithm,
    key: Arc<DecodingKey>,
}

/// The keys of one JWKS document.
#[derive(Default)]
pub(crate) struct KeySet(Vec<BoundKey>);

/// A JWKS document whose entries are read one by one, so one odd key does not hide the others.
#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Reads a JWKS document, keeping the keys that can verify RS256 or ES256.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        let raw: RawJwks = serde_json::from_slice(body)?;
        let keys = raw.keys.into_iter().filter_map(|value| {
            let jwk: Jwk = serde_json::from_value(value).ok()?;
            let alg = bound_algorithm(&jwk)?;
            match DecodingKey::from_jwk(&jwk) {
                Ok(key) => Some(BoundKey {
                    kid: jwk.common.key_id,
                    alg,
                    key: Arc::new(key),
                }),
                Err(e) => {
                    debug!(kid = ?jwk.common.key_id, error = %e, "JWKS key skipped");
                    None
                }
            }
        });
        Ok(KeySet(keys.collect()))
    }

    /// The key for `alg` with id `kid`; without a `kid`, the only key for `alg` if there is one.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
        let mut candidates = self.0.iter().filter(|k| k.alg == alg);
        let found = match kid {
            Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
            None => candidates.next().filter(|_| candidates.next().is_none()),
        };
        found.map(|k| Arc::clone(&k.key))
    }
}

/// The one algorithm a JWK may verify, or `None` if it is not a signature key we accept.
fn bound_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(alg),
        Some(declared) => (declared == KeyAlgorithm::from(alg)).then_some(alg),
    }
}
