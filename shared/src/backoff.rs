//! Jittered exponential backoff for bounded retry loops (version conflicts, unprocessed batches).

use std::time::Duration;

/// "Full jitter": a random delay in `[0, min(cap, base * 2^attempt)]`.
pub fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let ceiling_micros = ceiling.as_micros() as u64;
    if ceiling_micros == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(random_u64() % (ceiling_micros + 1))
}

/// Sleeps for [`delay`].
pub async fn sleep(attempt: u32, base: Duration, cap: Duration) {
    tokio::time::sleep(delay(attempt, base, cap)).await;
}

/// A cheap random number for jitter (not for anything that needs to be unpredictable).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_growing_ceiling_and_the_cap() {
        let (base, cap) = (Duration::from_millis(2), Duration::from_millis(50));
        for attempt in 0..20 {
            let d = delay(attempt, base, cap);
            assert!(d <= cap, "attempt {attempt}: {d:?}");
            assert!(d <= base * 2u32.pow(attempt.min(16)), "attempt {attempt}: {d:?}");
        }
    }
}
