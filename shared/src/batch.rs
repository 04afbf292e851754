//! The ordered-batch engine both stream handlers run on: records grouped by key, each key's
//! records in stream order, keys concurrently; a key stops at its first retryable failure,
//! whose sequence number is reported (the event source mapping resumes there). A handler
//! takes one record at a time ([`run_in_key_order`]) or a key's records at once
//! ([`run_key_groups`], e.g. to coalesce them).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures::{stream, StreamExt};
use tracing::{error, info_span, warn, Instrument};

use crate::error::{chain, Result};

/// One stream record: its sequence number, the key whose order it belongs to (`None`: a
/// record with no key, ordered with nothing), and what it decoded to.
#[derive(Debug)]
pub struct BatchRecord<K, T> {
    pub sequence: String,
    pub key: Option<K>,
    pub item: Result<T>,
}

/// Runs `handle` on every record and returns the sequence numbers to report as batch item
/// failures (at most one per key: the first record that failed retryably; the key's later
/// records come again with the retry). A record that does not decode, or fails in a way a
/// retry cannot fix, is logged and skipped. At most `concurrency` keys run at once.
pub async fn run_in_key_order<K, T, F, Fut>(
    records: Vec<BatchRecord<K, T>>,
    concurrency: usize,
    handle: F,
) -> Vec<String>
where
    K: Eq + Hash,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let handle = &handle;
    run_key_groups(records, concurrency, |group| async move {
        for (sequence, item) in group {
            let outcome = handle(item).instrument(info_span!("stream_record", %sequence)).await;
            if let Some(failed) = settle(sequence, outcome) {
                return Some(failed);
            }
        }
        None
    })
    .await
}

/// Like [`run_in_key_order`], but `handle` gets all of a key's decoded records at once, in
/// stream order (records that do not decode are logged and left out), and returns the
/// sequence number to retry from, if any.
pub async fn run_key_groups<K, T, F, Fut>(records: Vec<BatchRecord<K, T>>, concurrency: usize, handle: F) -> Vec<String>
where
    K: Eq + Hash,
    F: Fn(Vec<(String, T)>) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let mut groups: Vec<Vec<(String, T)>> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for record in records {
        let item = match record.item {
            Ok(item) => item,
            Err(e) => {
                error!(sequence = %record.sequence, error = %chain(&e), "skipping a stream record that cannot be decoded");
                continue;
            }
        };
        let at = match record.key {
            Some(key) => *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            }),
            None => {
                groups.push(Vec::new());
                groups.len() - 1
            }
        };
        groups[at].push((record.sequence, item));
    }
    let failed: Vec<Option<String>> = stream::iter(groups)
        .map(&handle)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    failed.into_iter().flatten().collect()
}

/// What a record's outcome means for the batch: `Some(sequence)` to retry from there.
pub fn settle(sequence: String, outcome: Result<()>) -> Option<String> {
    match outcome {
        Ok(()) => None,
        Err(e) if e.is_retryable() => {
            warn!(%sequence, error = %chain(&e), "record failed; it will be retried");
            Some(sequence)
        }
        Err(e) => {
            error!(%sequence, error = %chain(&e), "record cannot succeed; skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::Error;

    fn record(sequence: u32, key: Option<&'static str>, item: Result<u32>) -> BatchRecord<&'static str, u32> {
        BatchRecord {
            sequence: sequence.to_string(),
            key,
            item,
        }
    }

    fn retryable() -> Error {
        Error::Dependency {
            operation: "test",
            retryable: true,
            source: "throttled".into(),
        }
    }

    fn terminal() -> Error {
        Error::Corrupt {
            what: "test",
            detail: "never works".into(),
        }
    }

    /// Runs `records` (each item names its own value), failing the values in `fail` with the
    /// error it maps to; returns the reported failures and the values handled, in order.
    async fn run(
        records: Vec<BatchRecord<&'static str, u32>>,
        fail: impl Fn(u32) -> Option<Error>,
        concurrency: usize,
    ) -> (Vec<String>, Vec<u32>) {
        let seen = Mutex::new(Vec::new());
        let failed = run_in_key_order(records, concurrency, |value| {
            seen.lock().expect("lock").push(value);
            let outcome = fail(value).map_or(Ok(()), Err);
            async move {
                tokio::task::yield_now().await;
                outcome
            }
        })
        .await;
        (failed, seen.into_inner().expect("lock"))
    }

    #[tokio::test]
    async fn each_key_keeps_its_stream_order() {
        let records = (0..30)
            .map(|i| record(i, Some(["a", "b", "c"][i as usize % 3]), Ok(i)))
            .collect();
        let (failed, seen) = run(records, |_| None, 3).await;
        assert!(failed.is_empty());
        assert_eq!(seen.len(), 30);
        for key in 0..3 {
            let order: Vec<u32> = seen.iter().copied().filter(|v| v % 3 == key).collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "key {key} ran out of order: {order:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_retryable_failure_stops_its_key_and_reports_that_record_only() {
        let records = vec![
            record(1, Some("a"), Ok(1)),
            record(2, Some("b"), Ok(2)),
            record(3, Some("a"), Ok(3)),
            record(4, Some("b"), Ok(4)),
            record(5, Some("a"), Ok(5)),
        ];
        let (failed, seen) = run(records, |v| (v == 3).then(retryable), 2).await;
        assert_eq!(failed, vec!["3".to_owned()]);
        assert!(!seen.contains(&5), "a's records after the failure wait for the retry");
        assert!(seen.contains(&4), "other keys go on");
    }

    #[tokio::test]
    async fn terminal_failures_and_undecodable_records_are_skipped() {
        let records = vec![
            record(1, Some("a"), Ok(1)),
            record(2, Some("a"), Err(terminal())),
            record(3, Some("a"), Ok(3)),
            record(4, Some("a"), Ok(4)),
        ];
        let (failed, seen) = run(records, |v| (v == 3).then(terminal), 1).await;
        assert!(failed.is_empty(), "nothing to retry: {failed:?}");
        assert_eq!(seen, vec![1, 3, 4]);
    }

    #[tokio::test]
    async fn records_without_a_key_stand_alone() {
        let records = vec![
            record(1, None, Ok(1)),
            record(2, None, Ok(2)),
            record(3, Some("a"), Ok(3)),
        ];
        let (failed, seen) = run(records, |v| (v == 1).then(retryable), 1).await;
        assert_eq!(failed, vec!["1".to_owned()]);
        assert_eq!(seen, vec![1, 2, 3], "a keyless failure stops nothing else");
    }
}
