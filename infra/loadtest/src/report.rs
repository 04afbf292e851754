//! What a run prints: one JSON object per target, or a human table with the ours / ceiling ratio.

use std::fmt::Write as _;

use serde::Serialize;

use crate::driver::{DriverOptions, Measurement};

/// One target's figures; serialised as the `--json` line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: &'static str,
    /// `call` or `broadcast`: what was sent `calls` times.
    pub message: &'static str,
    pub subscribers: usize,
    pub calls: u64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub deliveries_per_sec: f64,
    /// This process's peak resident memory (VmHWM, MiB) while the target ran, the clients
    /// included; `null` when the stack ran elsewhere (`--url`) or /proc could not be read.
    pub peak_rss_mb: Option<f64>,
    /// How many errors (missing, duplicate or out-of-order deliveries, error replies, timeouts).
    pub errors: usize,
    /// The first few error messages.
    #[serde(skip)]
    pub error_messages: Vec<String>,
    /// Where the time goes (table only): send → the sender's reply (`result` or `sent`),
    /// → the first delivery.
    #[serde(skip)]
    pub reply: &'static str,
    #[serde(skip)]
    pub reply_p50_ms: f64,
    #[serde(skip)]
    pub reply_p99_ms: f64,
    #[serde(skip)]
    pub first_p50_ms: f64,
    #[serde(skip)]
    pub first_p99_ms: f64,
}

impl Report {
    pub fn new(target: &'static str, options: &DriverOptions, m: &Measurement, peak_rss_mb: Option<f64>) -> Self {
        Self {
            target,
            message: options.message.name(),
            subscribers: options.subscribers,
            calls: options.calls,
            connect_p50_ms: round(m.connect.percentile_ms(50.0)),
            connect_p99_ms: round(m.connect.percentile_ms(99.0)),
            p50_ms: round(m.delivered.percentile_ms(50.0)),
            p90_ms: round(m.delivered.percentile_ms(90.0)),
            p99_ms: round(m.delivered.percentile_ms(99.0)),
            max_ms: round(m.delivered.max_ms()),
            deliveries_per_sec: m.deliveries_per_sec(options.subscribers).round(),
            peak_rss_mb: peak_rss_mb.map(|mb| (mb * 10.0).round() / 10.0),
            errors: m.errors.count,
            error_messages: m.errors.first.clone(),
            reply: options.message.reply(),
            reply_p50_ms: round(m.to_reply.percentile_ms(50.0)),
            reply_p99_ms: round(m.to_reply.percentile_ms(99.0)),
            first_p50_ms: round(m.to_first.percentile_ms(50.0)),
            first_p99_ms: round(m.to_first.percentile_ms(99.0)),
        }
    }

    /// The `--json` line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Microsecond resolution is all a loopback run can claim.
fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The human table; with both a ceiling and an ours row, the `ratio = ours / ceiling` line too.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:>6} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>13} {:>6} {:>10}",
        "target",
        "message",
        "subs",
        "sent",
        "connect p50",
        "connect p99",
        "p50",
        "p90",
        "p99",
        "max",
        "deliveries/s",
        "errors",
        "peak RSS"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<8} {:<9} {:>6} {:>6} {:>9.3} ms {:>9.3} ms {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>13.0} {:>6} {:>10}",
            r.target,
            r.message,
            r.subscribers,
            r.calls,
            r.connect_p50_ms,
            r.connect_p99_ms,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.deliveries_per_sec,
            r.errors,
            r.peak_rss_mb
                .map_or_else(|| "n/a".to_owned(), |mb| format!("{mb:.1} MB"))
        );
    }
    let _ = writeln!(
        out,
        "(all-delivered latency in ms: message sent → the last of the subscribers got it: the change of a call, or the broadcast)"
    );
    let _ = writeln!(
        out,
        "(peak RSS: this process's VmHWM while the target ran, its {} clients included{})",
        reports[0].subscribers,
        if reports.len() > 1 {
            "; the second target starts from what the first left resident: run `--target ours` and `--target ceiling` separately for a clean figure"
        } else {
            ""
        }
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{}: p50/p99 {} → {} {:.3}/{:.3} ms, → first delivery {:.3}/{:.3} ms, → last delivery {:.3}/{:.3} ms",
            r.target,
            r.message,
            r.reply,
            r.reply_p50_ms,
            r.reply_p99_ms,
            r.first_p50_ms,
            r.first_p99_ms,
            r.p50_ms,
            r.p99_ms
        );
    }
    let find = |name: &str| reports.iter().find(|r| r.target == name);
    if let (Some(ours), Some(ceiling)) = (find("ours"), find("ceiling")) {
        let _ = writeln!(
            out,
            "ratio = ours / ceiling: p50 {}, p99 {}",
            ratio(ours.p50_ms, ceiling.p50_ms),
            ratio(ours.p99_ms, ceiling.p99_ms)
        );
    }
    out
}

fn ratio(ours: f64, ceiling: f64) -> String {
    if ceiling > 0.0 {
        format!("{:.1}x", ours / ceiling)
    } else {
        "n/a".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(target: &'static str, p50: f64, p99: f64) -> Report {
        Report {
            target,
            message: "call",
            subscribers: 10,
            calls: 5,
            connect_p50_ms: 1.0,
            connect_p99_ms: 2.0,
            p50_ms: p50,
            p90_ms: p99,
            p99_ms: p99,
            max_ms: p99,
            deliveries_per_sec: 1000.0,
            peak_rss_mb: Some(42.0),
            errors: 0,
            error_messages: vec!["not in the JSON".into()],
            reply: "result",
            reply_p50_ms: 0.5,
            reply_p99_ms: 0.6,
            first_p50_ms: 0.7,
            first_p99_ms: 0.8,
        }
    }

    /// The JSON line has exactly the fields a benchmark script reads.
    #[test]
    fn json_has_the_documented_fields() {
        let value: serde_json::Value = serde_json::from_str(&report("ours", 1.0, 2.0).json()).expect("JSON");
        let mut keys: Vec<_> = value.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        let mut expected = [
            "target",
            "message",
            "subscribers",
            "calls",
            "connect_p50_ms",
            "connect_p99_ms",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "deliveries_per_sec",
            "peak_rss_mb",
            "errors",
        ];
        expected.sort();
        assert_eq!(keys, expected);
    }

    /// Both targets: the table ends with ours / ceiling for p50 and p99.
    #[test]
    fn table_with_both_targets_prints_the_ratio() {
        let table = table(&[report("ceiling", 2.0, 4.0), report("ours", 5.0, 6.0)]);
        assert!(table.contains("ratio = ours / ceiling: p50 2.5x, p99 1.5x"), "{table}");
    }

    /// Every column's p50 and p99, named after what was sent and its reply.
    #[test]
    fn table_has_p50_and_p99_of_every_column() {
        let table = table(&[report("ours", 5.0, 6.0)]);
        assert!(
            table.contains("ours: p50/p99 call → result 0.500/0.600 ms, → first delivery 0.700/0.800 ms, → last delivery 5.000/6.000 ms"),
            "{table}"
        );
    }

    /// Each row ends with the target's peak RSS; a stack at a URL has none here.
    #[test]
    fn table_has_each_targets_peak_rss() {
        let mut remote = report("ours", 5.0, 6.0);
        remote.peak_rss_mb = None;
        let table = table(&[report("ceiling", 2.0, 4.0), remote]);
        let rows: Vec<&str> = table.lines().skip(1).take(2).collect();
        assert!(rows[0].ends_with("42.0 MB"), "{table}");
        assert!(rows[1].ends_with("n/a"), "{table}");
        assert!(
            table.contains("run `--target ours` and `--target ceiling` separately"),
            "{table}"
        );
    }

    /// One target alone has no ratio.
    #[test]
    fn table_with_one_target_has_no_ratio() {
        assert!(!table(&[report("ours", 5.0, 6.0)]).contains("ratio"));
    }
}
