//! Delivery verification: every client got every version (or broadcast) exactly once, in order.

use std::fmt;
use std::ops::Range;

/// One way a client's deliveries went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// `version` was produced but never reached `client`.
    Missing { client: usize, version: u64 },
    /// `client` got `version` more than once.
    Duplicate { client: usize, version: u64 },
    /// `client` got `version` after the newer `after`.
    OutOfOrder { client: usize, version: u64, after: u64 },
    /// `client` got a version no call of this run produced.
    Unexpected { client: usize, version: u64 },
}

impl Violation {
    /// The sentence, naming what was delivered with `noun` ("version", "broadcast").
    pub fn describe(&self, noun: &str) -> String {
        match self {
            Violation::Missing { client, version } => format!("client {client} missed {noun} {version}"),
            Violation::Duplicate { client, version } => format!("client {client} got {noun} {version} twice"),
            Violation::OutOfOrder { client, version, after } => {
                format!("client {client} got {noun} {version} after {noun} {after} (out of order)")
            }
            Violation::Unexpected { client, version } => {
                format!("client {client} got {noun} {version}, which this run did not send")
            }
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("version"))
    }
}

/// Checks each client's change versions, in arrival order, against the `calls` versions
/// from `first` on that the run produced.
pub fn verify(logs: &[Vec<u64>], first: u64, calls: u64) -> Vec<Violation> {
    let expected = first..first.saturating_add(calls);
    logs.iter()
        .enumerate()
        .flat_map(|(client, log)| verify_client(client, log, expected.clone()))
        .collect()
}

fn verify_client(client: usize, log: &[u64], expected: Range<u64>) -> Vec<Violation> {
    let first = expected.start;
    let mut seen = vec![false; (expected.end - first) as usize];
    let mut highest: Option<u64> = None;
    let mut violations = Vec::new();
    for &version in log {
        if !expected.contains(&version) {
            violations.push(Violation::Unexpected { client, version });
            continue;
        }
        let slot = &mut seen[(version - first) as usize];
        if *slot {
            violations.push(Violation::Duplicate { client, version });
            continue;
        }
        *slot = true;
        match highest {
            Some(after) if version < after => violations.push(Violation::OutOfOrder { client, version, after }),
            _ => highest = Some(version),
        }
    }
    let missing = seen.iter().enumerate().filter(|(_, got)| !**got);
    violations.extend(missing.map(|(i, _)| Violation::Missing {
        client,
        version: first + i as u64,
    }));
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every version once and in order is clean.
    #[test]
    fn every_version_once_in_order_passes() {
        let logs = vec![vec![1, 2, 3], vec![1, 2, 3]];
        assert_eq!(verify(&logs, 1, 3), vec![]);
    }

    /// Versions need not start at 1: a reused actor starts where its subscription did.
    #[test]
    fn a_later_starting_version_passes() {
        assert_eq!(verify(&[vec![8, 9]], 8, 2), vec![]);
    }

    /// A gap is a missing delivery for that client only.
    #[test]
    fn a_gap_is_reported_as_missing() {
        let logs = vec![vec![1, 2, 3], vec![1, 3]];
        assert_eq!(verify(&logs, 1, 3), vec![Violation::Missing { client: 1, version: 2 }]);
    }

    /// A client that got nothing misses every version.
    #[test]
    fn a_silent_client_misses_everything() {
        let missing: Vec<_> = (1..=2)
            .map(|version| Violation::Missing { client: 0, version })
            .collect();
        assert_eq!(verify(&[vec![]], 1, 2), missing);
    }

    /// The same version twice is a duplicate, even right after itself.
    #[test]
    fn a_repeated_version_is_a_duplicate() {
        let logs = vec![vec![1, 1, 2, 3, 2]];
        assert_eq!(
            verify(&logs, 1, 3),
            vec![
                Violation::Duplicate { client: 0, version: 1 },
                Violation::Duplicate { client: 0, version: 2 },
            ]
        );
    }

    /// An older version after a newer one is out of order (and not also missing).
    #[test]
    fn an_older_version_after_a_newer_one_is_out_of_order() {
        let logs = vec![vec![1, 3, 2]];
        assert_eq!(
            verify(&logs, 1, 3),
            vec![Violation::OutOfOrder {
                client: 0,
                version: 2,
                after: 3
            }]
        );
    }

    /// A version outside what the run produced is flagged, not silently ignored.
    #[test]
    fn a_version_nobody_produced_is_unexpected() {
        let logs = vec![vec![1, 2, 7]];
        assert_eq!(
            verify(&logs, 1, 2),
            vec![Violation::Unexpected { client: 0, version: 7 }]
        );
    }

    /// With no calls every delivery is unexpected and nothing can be missing.
    #[test]
    fn no_calls_expect_no_deliveries() {
        assert_eq!(verify(&[vec![]], 1, 0), vec![]);
        assert_eq!(
            verify(&[vec![1]], 1, 0),
            vec![Violation::Unexpected { client: 0, version: 1 }]
        );
    }

    /// Messages name the client and version so a failed run says what went wrong.
    #[test]
    fn violations_read_as_sentences() {
        let v = Violation::OutOfOrder {
            client: 4,
            version: 2,
            after: 3,
        };
        assert_eq!(v.to_string(), "client 4 got version 2 after version 3 (out of order)");
        assert_eq!(
            Violation::Missing { client: 1, version: 7 }.describe("broadcast"),
            "client 1 missed broadcast 7"
        );
    }
}
