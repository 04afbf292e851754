//! A webhook's proof of origin, checked before anything else is read: the HMAC signature
//! header, the bearer token (compared in constant time), or nothing when declared so.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::definition::Verification;
use super::service::Armed;
use super::signature;

/// Checks `armed`'s verification on a request; `headers` have lower-case names. The error
/// says why (answered with 401).
pub fn check(armed: &Armed, headers: &BTreeMap<String, String>, body: &[u8], now: i64) -> Result<(), String> {
    let Some(hook) = armed.trigger.webhook_settings() else {
        return Err("not a webhook".into());
    };
    let secret = armed.secret.as_deref().unwrap_or_default();
    match &hook.verification {
        Verification::None => Ok(()),
        Verification::Hmac { header, tolerance, .. } => {
            let value = headers.get(&header.to_ascii_lowercase()).map(String::as_str);
            signature::verify(value, header, secret, body, now, *tolerance).map_err(|e| e.to_string())
        }
        Verification::Bearer { .. } => {
            let token = headers
                .get("authorization")
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .ok_or("missing bearer token (Authorization: Bearer …)")?;
            match bool::from(token.as_bytes().ct_eq(secret)) {
                true => Ok(()),
                false => Err("wrong bearer token".into()),
            }
        }
    }
}
