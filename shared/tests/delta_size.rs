//! Delta size on a realistic workload (issue 6's target): a todo list of 1,000 items edited
//! one item at a time. Every frame a subscriber gets must be no larger than the snapshot it
//! replaces, and the mean delta must stay within 5 % of the full state. Sizes are exact byte
//! counts of the frames sent, so this is a deterministic check, not a timing.
//!
//! `cargo test -p statecast --test delta_size -- --nocapture` prints the figures.

use serde_json::{json, Value};
use statecast::delta::{change, Change};
use statecast::ids::{Epoch, Version};
use statecast::protocol::ServerMessage;

/// A small deterministic generator (no external randomness in tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn frame_len(old: &Value, new: &Value, version: u64) -> (usize, usize) {
    let snapshot = ServerMessage::Snapshot {
        actor: "todo/list".into(),
        epoch: Epoch(1),
        version: Version(version),
        state: new.clone(),
    }
    .to_json()
    .len();
    let sent = match change(old, new) {
        Change::Delta(patch) => ServerMessage::Delta {
            actor: "todo/list".into(),
            epoch: Epoch(1),
            from: Version(version - 1),
            to: Version(version),
            patch,
        }
        .to_json()
        .len(),
        Change::Snapshot => snapshot,
    };
    (sent, snapshot)
}

#[test]
fn single_item_edits_of_a_1000_item_todo_list_send_deltas_of_a_few_percent() {
    let app = statecast::app::application().expect("valid");
    let registry = app.actors();
    let todo = registry.get("todo").expect("the todo actor");
    let mut state = todo.default_state();
    for i in 0..1000 {
        let args = json!({"title": format!("item {i}: buy something useful for the house")});
        state = todo.invoke(Some(&state), "add", args).expect("add").state;
    }
    let mut rng = Lcg(7);
    let mut ratios = Vec::new();
    let mut version = 1000;
    for edit in 0..400 {
        let ids: Vec<String> = state["items"].as_object().expect("items map").keys().cloned().collect();
        let id = ids[rng.next(ids.len() as u64) as usize].clone();
        let (method, args) = match edit % 4 {
            0 => ("toggle", json!({"id": id})),
            1 => ("rename", json!({"id": id, "title": format!("renamed in edit {edit}")})),
            2 => ("remove", json!({"id": id})),
            _ => ("add", json!({"title": format!("added in edit {edit}")})),
        };
        let new = todo.invoke(Some(&state), method, args).expect(method).state;
        version += 1;
        let (sent, snapshot) = frame_len(&state, &new, version);
        assert!(
            sent <= snapshot,
            "edit {edit} ({method}): {sent} bytes sent, snapshot {snapshot}"
        );
        ratios.push(sent as f64 / snapshot as f64);
        state = new;
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let max = ratios.iter().copied().fold(0.0, f64::max);
    let state_len = serde_json::to_string(&state).expect("json").len();
    println!(
        "todo, ~1000 items ({state_len} bytes of state), {} single-item edits: mean frame {:.3} % of the snapshot, max {:.3} %",
        ratios.len(),
        mean * 100.0,
        max * 100.0
    );
    assert!(mean <= 0.05, "mean delta is {:.2} % of the state", mean * 100.0);
}

#[test]
fn a_patch_that_would_not_pay_is_sent_as_a_snapshot() {
    // Inserting at the front of an array shifts every element: the patch would be larger.
    let old = json!({"list": (0..200).map(|i| format!("entry {i}")).collect::<Vec<_>>()});
    let mut new = old.clone();
    new["list"].as_array_mut().expect("array").insert(0, json!("first"));
    assert_eq!(change(&old, &new), Change::Snapshot);
    let (sent, snapshot) = frame_len(&old, &new, 2);
    assert_eq!(sent, snapshot);
}
