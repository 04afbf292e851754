//! `parse_client_message` for every client message kind and for one malformed frame.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use statecast::protocol::{parse_client_message, ClientMessage, ProtocolError};
use std::hint::black_box;

const FRAMES: [(&str, &str); 9] = [
    ("subscribe", r#"{"action":"subscribe","id":1,"actor":"todo/groceries"}"#),
    (
        "unsubscribe",
        r#"{"action":"unsubscribe","id":3,"actor":"todo/groceries"}"#,
    ),
    (
        "call",
        r#"{"action":"call","id":2,"actor":"todo/groceries","method":"add","args":{"title":"milk"}}"#,
    ),
    ("ping", r#"{"action":"ping","id":4}"#),
    (
        "workflow.start",
        r#"{"action":"workflow.start","id":6,"workflow":"checkout","input":{"cart":"c-1"},"workflowId":"order-1"}"#,
    ),
    (
        "workflow.cancel",
        r#"{"action":"workflow.cancel","id":7,"workflowId":"order-1"}"#,
    ),
    (
        "workflow.status",
        r#"{"action":"workflow.status","id":8,"workflowId":"order-1"}"#,
    ),
    (
        "presence.update",
        r#"{"action":"presence.update","id":9,"actor":"todo/groceries","presence":{"name":"ann","cursor":[3,4]}}"#,
    ),
    (
        "broadcast",
        r#"{"action":"broadcast","id":10,"actor":"todo/groceries","event":"cursor","payload":{"x":3,"y":4}}"#,
    ),
];

/// Valid JSON whose `call` lacks `method`: refused only after the full parse.
const MALFORMED: &str = r#"{"action":"call","id":5,"actor":"todo/nope"}"#;

fn kind(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Subscribe { .. } => "subscribe",
        ClientMessage::Unsubscribe { .. } => "unsubscribe",
        ClientMessage::Call { .. } => "call",
        ClientMessage::Ping { .. } => "ping",
        ClientMessage::WorkflowStart { .. } => "workflow.start",
        ClientMessage::WorkflowCancel { .. } => "workflow.cancel",
        ClientMessage::WorkflowStatus { .. } => "workflow.status",
        ClientMessage::PresenceUpdate { .. } => "presence.update",
        ClientMessage::Broadcast { .. } => "broadcast",
    }
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol/parse_client_message");
    for (name, frame) in FRAMES {
        let parsed = parse_client_message(frame).unwrap_or_else(|e| panic!("{name} must parse: {e:?}"));
        assert_eq!(kind(&parsed), name);
        group.bench_with_input(BenchmarkId::from_parameter(name), frame, |b, frame| {
            b.iter(|| parse_client_message(black_box(frame)))
        });
    }
    let refused = parse_client_message(MALFORMED).expect_err("a call without a method is refused");
    assert!(matches!(refused.1, ProtocolError::InvalidFields { ref detail, .. } if detail.contains("method")));
    group.bench_function("malformed_call_without_method", |b| {
        b.iter(|| parse_client_message(black_box(MALFORMED)))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
