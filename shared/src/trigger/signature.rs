//! HMAC-SHA256 webhook signatures in the common `t=<unix seconds>,v1=<hex>` header form: the
//! MAC covers `"{t}.{body}"`, so a captured signature cannot be replayed with another body or,
//! outside the tolerance window, at another time. Several `v1` values may be sent (while a
//! secret is rotated); one match is enough. Comparisons take constant time.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused (each answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature header {0}")]
    Missing(String),
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp is {skew} s away from now; the tolerance is {tolerance} s")]
    OutsideWindow { skew: u64, tolerance: u64 },
    #[error("no signature matches the body")]
    Mismatch,
}

/// The header value that signs `body` at `timestamp` (unix seconds) with `secret`.
pub fn header_value(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks `header` (the signature header's value, if sent) for `body` at `now`.
pub fn verify(
    header: Option<&str>,
    header_name: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = header.ok_or_else(|| SignatureError::Missing(header_name.to_owned()))?;
    let parsed = parse(header)?;
    let skew = now.abs_diff(parsed.timestamp);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::OutsideWindow {
            skew,
            tolerance: tolerance.as_secs(),
        });
    }
    let expected = mac(secret, parsed.timestamp, body);
    // Every candidate is checked (no early exit), each in constant time.
    let matched = parsed.signatures.iter().fold(false, |found, candidate| {
        expected.clone().verify_slice(candidate).is_ok() | found
    });
    matched.then_some(()).ok_or(SignatureError::Mismatch)
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

struct Parsed {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Parsed, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match key {
            "t" if timestamp.is_some() => return Err(SignatureError::Malformed("more than one t")),
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t must be unix seconds"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(decode_hex(value).ok_or(SignatureError::Malformed("v1 must be 64 hex digits"))?),
            // Other schemes (v0, …) are ignored, as senders add them for older receivers.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    Ok(Parsed { timestamp, signatures })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn check(header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        verify(Some(header), "Statecast-Signature", b"s3cret", body, now, WINDOW)
    }

    #[test]
    fn a_signed_body_verifies_within_the_window_only() {
        let header = header_value(b"s3cret", 1_000, b"{}");
        assert_eq!(check(&header, b"{}", 1_000), Ok(()));
        assert_eq!(check(&header, b"{}", 1_300), Ok(()));
        assert!(matches!(
            check(&header, b"{}", 1_301),
            Err(SignatureError::OutsideWindow { skew: 301, .. })
        ));
        assert_eq!(check(&header, b"{} ", 1_000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_named() {
        let good = header_value(b"s3cret", 5, b"x");
        let v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        for (header, problem) in [
            ("v1=00", "v1 must be 64 hex digits"),
            (&*format!("v1={v1}"), "no t"),
            ("t=5", "no v1 signature"),
            ("t=x,v1=00", "t must be unix seconds"),
            ("garbage", "expected key=value pairs"),
            (&*format!("t=5,t=6,v1={v1}"), "more than one t"),
        ] {
            assert_eq!(
                check(header, b"x", 5),
                Err(SignatureError::Malformed(problem)),
                "{header}"
            );
        }
        assert_eq!(check(&format!("t=5,v1={},v1={v1}", "0".repeat(64)), b"x", 5), Ok(()));
    }
}
