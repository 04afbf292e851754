//! The EMF shape CloudWatch requires: `_aws.Timestamp`, one directive per dimension set, every
//! declared metric and dimension present at the top level.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::*;

fn one_document(metrics: &Metrics, capture: &CaptureWriter, document: Document) -> Value {
    capture.clear();
    metrics.emit(document);
    let documents = capture.documents();
    assert_eq!(documents.len(), 1, "{:?}", capture.lines());
    documents.into_iter().next().unwrap_or_default()
}

#[test]
fn a_document_declares_each_metric_with_its_unit_under_its_dimensions() {
    let capture = Arc::new(CaptureWriter::new());
    let metrics = Metrics::new("fn-default", capture.clone());
    let doc = one_document(
        &metrics,
        &capture,
        Document::new()
            .outcome("conflict")
            .count(Metric::Calls, 1)
            .duration(Metric::CallLatency, Duration::from_micros(2500))
            .count(Metric::Conflicts, 3)
            .property("requestId", "r-1"),
    );
    assert_eq!(doc["FunctionName"], "fn-default");
    assert_eq!(doc["Outcome"], "conflict");
    assert_eq!(doc["Calls"], 1.0);
    assert_eq!(doc["CallLatency"], 2.5);
    assert_eq!(doc["Conflicts"], 3.0);
    assert_eq!(doc["requestId"], "r-1");
    assert!(doc["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000));
    let directives = doc["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
    assert_eq!(directives.len(), 2);
    for directive in directives {
        assert_eq!(directive["Namespace"], NAMESPACE);
        let dimensions: Vec<&str> = directive["Dimensions"][0]
            .as_array()
            .expect("one dimension set")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for d in &dimensions {
            assert!(doc.get(*d).is_some(), "dimension {d} has a value");
        }
        for m in directive["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("name");
            let metric = Metric::ALL.iter().find(|x| x.name() == name).expect("a known metric");
            assert_eq!(m["Unit"], metric.unit().as_str());
            assert_eq!(dimensions.contains(&"Outcome"), metric.by_outcome(), "{name}");
        }
    }
}

#[test]
fn several_values_of_one_metric_become_an_array() {
    let capture = Arc::new(CaptureWriter::new());
    let metrics = Metrics::new("fn-fanout", capture.clone());
    let doc = one_document(
        &metrics,
        &capture,
        Document::new()
            .value(Metric::FanoutLag, 4.0)
            .value(Metric::FanoutLag, 9.0)
            .count(Metric::BatchSize, 2),
    );
    assert_eq!(doc["FanoutLag"], serde_json::json!([4.0, 9.0]));
    assert_eq!(doc["BatchSize"], 2.0);
    assert!(
        doc.get("Outcome").is_none(),
        "no outcome dimension without such a metric"
    );
}

#[test]
fn nothing_is_written_when_off_or_empty() {
    let capture = Arc::new(CaptureWriter::new());
    Metrics::new("f", capture.clone()).emit(Document::new().property("requestId", "x"));
    assert!(capture.lines().is_empty());
    Metrics::off().emit(Document::new().count(Metric::Deliveries, 1));
    assert!(!Metrics::off().is_on());
}

#[test]
fn metric_names_are_unique_and_listed_once() {
    let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Metric::ALL.len());
}
