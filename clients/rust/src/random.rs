//! Random numbers without a crate: std's randomly keyed hasher over a counter and the clock,
//! for back-off jitter and idempotency keys (unpredictable enough, not cryptographic).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// A number in [0, 1).
pub(crate) fn unit_fraction() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 128 random bits in hex: the idempotency key of one call, re-sent with each retry.
pub(crate) fn idempotency_key() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_and_fractions_stay_below_one() {
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| idempotency_key()).collect();
        assert_eq!(keys.len(), 1000);
        assert!(keys.iter().all(|k| k.len() == 32));
        assert!((0..1000).map(|_| unit_fraction()).all(|f| (0.0..1.0).contains(&f)));
    }
}
