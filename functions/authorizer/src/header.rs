//! The JOSE header of a token, read before any key is chosen: its shape, `alg` and `kid`.

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::error::AuthError;

/// What the header says about how to verify the token (untrusted until the signature checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Checks the three-part shape and reads `alg`/`kid`; an unknown `alg` (e.g. `none`) is refused here.
pub(crate) fn inspect(token: &str) -> Result<TokenHeader, AuthError> {
    let [header, _, _] = segments(token).ok_or(AuthError::Malformed("not three dot-separated parts"))?;
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url"))?;
    let raw: RawHeader =
        serde_json::from_slice(&json).map_err(|_| AuthError::Malformed("header is not a JSON object with `alg`"))?;
    let alg = Algorithm::from_str(&raw.alg).map_err(|_| AuthError::UnsupportedAlgorithm(raw.alg))?;
    Ok(TokenHeader { alg, kid: raw.kid })
}

/// Whether `s` has a JWT's shape: three non-empty base64url parts.
pub(crate) fn looks_like_jwt(s: &str) -> bool {
    segments(s).is_some_and(|parts| parts.iter().all(|p| !p.is_empty() && p.bytes().all(is_base64url)))
}

fn segments(token: &str) -> Option<[&str; 3]> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Some([a, b, c]),
        _ => None,
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}
