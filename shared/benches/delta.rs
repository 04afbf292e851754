//! `delta::change` (diff + delta-or-snapshot rule) plus encoding the frame subscribers get,
//! for keyed-map states of ~1 KB to ~400 KB with one item edited, and the bad case: an array
//! with an insert at the front, which must fall back to a snapshot at a cost linear in the state.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Map, Value};
use statecast::delta::{self, serialized_len, Change};
use statecast::ids::{Epoch, Version};
use statecast::protocol::ServerMessage;
use std::hint::black_box;

/// Target sizes of the state, in bytes of compact JSON.
const SIZES: [(&str, usize); 4] = [("1KB", 1_000), ("16KB", 16_000), ("128KB", 128_000), ("400KB", 400_000)];

fn todo_item(i: usize) -> Value {
    json!({"title": format!("buy item number {i} at the corner shop"), "done": i.is_multiple_of(3)})
}

/// A todo-like state `{items: {id: {title, done}}, nextId}` of at least `bytes` bytes.
fn keyed_state(bytes: usize) -> Value {
    let mut items = Map::new();
    let mut len = 0;
    while len < bytes {
        let i = items.len() + 1;
        let item = todo_item(i);
        // `"key":item,`
        len += serialized_len(&item) + i.to_string().len() + 4;
        items.insert(i.to_string(), item);
    }
    json!({"nextId": items.len(), "items": items})
}

/// An array state `{list: [item, ...]}` of at least `bytes` bytes.
fn array_state(bytes: usize) -> Value {
    let mut list = Vec::new();
    let mut len = 0;
    while len < bytes {
        let item = todo_item(list.len() + 1);
        len += serialized_len(&item) + 1;
        list.push(item);
    }
    json!({ "list": list })
}

/// What the fan-out sends for `old` → `new`: the delta or snapshot frame, encoded.
fn frame(old: &Value, new: &Value) -> String {
    let message = match delta::change(old, new) {
        Change::Delta(patch) => ServerMessage::Delta {
            actor: "todo/bench".into(),
            epoch: Epoch(1),
            from: Version(41),
            to: Version(42),
            patch,
        },
        Change::Snapshot => ServerMessage::Snapshot {
            actor: "todo/bench".into(),
            epoch: Epoch(1),
            version: Version(42),
            state: new.clone(),
        },
    };
    message.to_json()
}

fn keyed_map_single_edit(c: &mut Criterion) {
    let mut group = c.benchmark_group("delta/keyed_map_single_edit");
    for (label, bytes) in SIZES {
        let old = keyed_state(bytes);
        let mut new = old.clone();
        let middle = (new["nextId"].as_u64().expect("nextId") / 2).to_string();
        new["items"][&middle]["done"] = json!(true);
        let expected = json!([{"op": "replace", "path": format!("/items/{middle}/done"), "value": true}]);
        match delta::change(&old, &new) {
            Change::Delta(patch) => assert_eq!(serde_json::to_value(&patch).expect("patch"), expected),
            Change::Snapshot => panic!("a one-field edit of a {label} map must be a delta"),
        }
        let state_len = serialized_len(&new);
        group.throughput(Throughput::Bytes(state_len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &(old, new), |b, (old, new)| {
            b.iter(|| frame(black_box(old), black_box(new)))
        });
    }
    group.finish();
}

fn array_front_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("delta/array_front_insert");
    for (label, bytes) in SIZES {
        let old = array_state(bytes);
        let mut new = old.clone();
        new["list"]
            .as_array_mut()
            .expect("list")
            .insert(0, json!({"title": "a new first item", "done": false}));
        assert_eq!(
            delta::change(&old, &new),
            Change::Snapshot,
            "a front insert into a {label} array must fall back to a snapshot"
        );
        let encoded = frame(&old, &new);
        assert!(
            encoded.len() < serialized_len(&new) + 200,
            "the snapshot frame is the state plus a small envelope"
        );
        group.throughput(Throughput::Bytes(serialized_len(&new) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &(old, new), |b, (old, new)| {
            b.iter(|| frame(black_box(old), black_box(new)))
        });
    }
    group.finish();
}

criterion_group!(benches, keyed_map_single_edit, array_front_insert);
criterion_main!(benches);
