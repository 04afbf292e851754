//! Trimming the embedded engine's stream records: dynoxide keeps every record of its one shard
//! per table for ever; local mode deletes those past the retention and those every event
//! source mapping of their table has processed, through a second SQLite connection.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::esm::ShardPositions;

/// How long the embedded engine keeps stream records. dynoxide keeps every record for ever
/// (one permanent shard, never trimmed), so a long session would grow without bound.
#[derive(Debug, Clone)]
pub struct StreamRetention {
    /// Records older than this are deleted: DynamoDB Streams keeps them 24 hours.
    pub max_age: Duration,
    /// Also delete the records every event source mapping of their table has processed
    /// (a reader of the stream other than the mappings would then miss them).
    pub trim_processed: bool,
    /// How often to trim.
    pub interval: Duration,
}

impl Default for StreamRetention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 60 * 60),
            trim_processed: true,
            interval: Duration::from_secs(1),
        }
    }
}

/// A table's stream and how far a reader of it has got.
#[derive(Debug, Clone)]
pub struct StreamReader {
    pub table: String,
    pub positions: watch::Receiver<ShardPositions>,
}

/// Why a trim failed (it is retried at the next tick).
#[derive(Debug, thiserror::Error)]
#[error("cannot trim the stream records: {0}")]
pub struct TrimError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> TrimError {
    TrimError(Box::new(e))
}

/// (table, shard, stored sequence number) up to which every reader of the table has processed
/// the shard; a shard some reader has not started is left alone.
pub(super) fn processed_up_to(readers: &[StreamReader]) -> Vec<(String, String, i64)> {
    let mut by_table: BTreeMap<&str, Vec<ShardPositions>> = BTreeMap::new();
    for reader in readers {
        by_table
            .entry(reader.table.as_str())
            .or_default()
            .push(reader.positions.borrow().clone());
    }
    let mut processed = Vec::new();
    for (table, positions) in by_table {
        let Some((first, others)) = positions.split_first() else {
            continue;
        };
        for (shard, sequence) in first {
            let everyone = std::iter::once(Some(sequence))
                .chain(others.iter().map(|p| p.get(shard)))
                .map(|s| s.and_then(|s| stored_sequence_number(s)))
                .collect::<Option<Vec<i64>>>();
            if let Some(up_to) = everyone.and_then(|all| all.into_iter().min()) {
                processed.push((table.to_owned(), shard.clone(), up_to));
            }
        }
    }
    processed
}

/// dynoxide's stored form of a public sequence number (21 digits: 10^20 + stored).
fn stored_sequence_number(public: &str) -> Option<i64> {
    let value: u128 = public.parse().ok()?;
    i64::try_from(value.checked_sub(100_000_000_000_000_000_000)?).ok()
}

/// Deletes the records older than `max_age` and those in `processed`, never the newest of a
/// table (dynoxide numbers the next record after it). Opens the connection on first use.
pub(super) fn trim_stream(
    connection: &mut Option<dynoxide::storage::Storage>,
    location: &str,
    max_age: Duration,
    processed: &[(String, String, i64)],
) -> Result<usize, TrimError> {
    let storage = match connection {
        Some(storage) => storage,
        None => connection.insert(dynoxide::storage::Storage::new(location).map_err(failed)?),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let cutoff = i64::try_from(now.saturating_sub(max_age).as_secs()).unwrap_or(i64::MAX);
    let conn = storage.conn();
    let mut deleted = conn
        .execute(
            "DELETE FROM _stream_records WHERE created_at < ?1 AND CAST(sequence_number AS INTEGER) < \
             (SELECT MAX(CAST(newest.sequence_number AS INTEGER)) FROM _stream_records AS newest \
              WHERE newest.table_name = _stream_records.table_name)",
            (cutoff,),
        )
        .map_err(failed)?;
    for (table, shard, up_to) in processed {
        deleted += conn
            .execute(
                "DELETE FROM _stream_records WHERE table_name = ?1 AND shard_id = ?2 \
                 AND CAST(sequence_number AS INTEGER) <= ?3 AND CAST(sequence_number AS INTEGER) < \
                 (SELECT MAX(CAST(sequence_number AS INTEGER)) FROM _stream_records WHERE table_name = ?1)",
                (table.as_str(), shard.as_str(), *up_to),
            )
            .map_err(failed)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(table: &str, positions: &[(&str, &str)]) -> StreamReader {
        let positions = positions.iter().map(|(s, p)| (s.to_string(), p.to_string())).collect();
        StreamReader {
            table: table.to_owned(),
            positions: watch::channel(positions).1,
        }
    }

    /// Two readers of one table: trimmed up to the lesser position, only on shards both read.
    #[test]
    fn records_go_only_once_every_reader_of_their_table_processed_them() {
        let readers = [
            reader(
                "actors",
                &[("s1", "100000000000000000042"), ("s2", "100000000000000000007")],
            ),
            reader("actors", &[("s1", "100000000000000000040")]),
            reader("workflows", &[("w1", "100000000000000000003")]),
        ];
        assert_eq!(
            processed_up_to(&readers),
            vec![("actors".into(), "s1".into(), 40), ("workflows".into(), "w1".into(), 3)]
        );
        assert_eq!(stored_sequence_number("99"), None);
    }
}
