//! Jittered exponential backoff for bounded retry loops (version conflicts, unprocessed batches).

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

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

/// Sends `pending` with `send`, which returns what the batch call left (unprocessed items,
/// refused entries), and sends that again after a [`delay`] (20 ms doubling to 1 s) until
/// nothing is left. After `attempts` calls the leftovers are a retryable
/// [`Error::Dependency`] naming `operation` and what was left (`what`, e.g. "deletes").
pub async fn resend_leftovers<T, F, Fut>(
    operation: &'static str,
    what: &str,
    attempts: u32,
    mut pending: Vec<T>,
    mut send: F,
) -> Result<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<T>>>,
{
    for attempt in 0..attempts {
        pending = send(pending).await?;
        if pending.is_empty() {
            return Ok(());
        }
        if attempt + 1 < attempts {
            sleep(attempt, Duration::from_millis(20), Duration::from_secs(1)).await;
        }
    }
    Err(Error::Dependency {
        operation,
        retryable: true,
        source: format!("{} {what} still left after {attempts} attempts", pending.len()).into(),
    })
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

    #[tokio::test]
    async fn leftovers_are_resent_until_taken_or_the_attempts_run_out() {
        let mut calls = Vec::new();
        let taken = resend_leftovers("Op", "items", 5, vec![1, 2, 3], |pending: Vec<u32>| {
            calls.push(pending.len());
            async move { Ok(pending.into_iter().skip(1).collect()) }
        })
        .await;
        assert!(taken.is_ok());
        assert_eq!(calls, [3, 2, 1], "each call gets what the one before left");

        let mut calls = 0;
        let refused = resend_leftovers("Op", "items", 4, vec![1, 2], |pending: Vec<u32>| {
            calls += 1;
            async move { Ok(pending) }
        })
        .await;
        assert_eq!(calls, 4);
        match refused {
            Err(Error::Dependency {
                operation,
                retryable,
                source,
            }) => {
                assert_eq!(operation, "Op");
                assert!(retryable);
                assert_eq!(source.to_string(), "2 items still left after 4 attempts");
            }
            other => panic!("expected a retryable dependency error, got {other:?}"),
        }
    }

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
