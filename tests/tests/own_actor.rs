//! "Add your own actor" from the README, done exactly as it says: the actor below is the one
//! new file, and `application()?.actor(Poll)` the one line that registers it; then a client
//! drives it through local mode over a real WebSocket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use statecast::actor::{args, Actor, ActorError};
use statecast::app::application;
use statecast_local::LocalOptions;
use statecast_tests::local::start_local;
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::WsClient;

// --- the new file (e.g. `shared/src/actor/poll.rs`) ---

/// A poll: `vote {option}` counts a vote and returns the option's count; `results`.
pub struct Poll;

#[derive(Default, Serialize, Deserialize)]
pub struct PollState {
    votes: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vote {
    option: String,
}

impl Actor for Poll {
    type State = PollState;

    fn actor_type(&self) -> &'static str {
        "poll"
    }

    fn call(&self, state: &mut PollState, method: &str, raw: Value) -> Result<Value, ActorError> {
        match method {
            "vote" => {
                let Vote { option } = args(method, raw)?;
                let count = state.votes.entry(option).or_default();
                *count += 1;
                Ok(json!(*count))
            }
            "results" => Ok(json!(state.votes)),
            other => Err(ActorError::unknown_method("poll", other, &["vote", "results"])),
        }
    }
}

// --- the test ---

/// Registered with one line, the new actor type serves calls and its subscribers get every
/// change through the ordinary fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_added_with_one_line_is_served_through_local_mode() {
    let stack = start_local(LocalOptions {
        application: application().expect("valid").actor(Poll),
        ..LocalOptions::default()
    })
    .await;
    let mut voter = WsClient::connect(&stack.ws_url).await;
    let mut watcher = WsClient::connect(&stack.ws_url).await;
    let subscribed = watcher
        .request(
            json!({"action":"subscribe","id":1,"actor":"poll/lunch"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["state"], json!({"votes": {}}), "{subscribed}");
    let mut replica = Replica::from_subscribed(&subscribed);

    for (i, option) in ["pizza", "sushi", "pizza"].into_iter().enumerate() {
        let reply = voter
            .request(
                json!({"action":"call","id":i,"actor":"poll/lunch","method":"vote","args":{"option":option}}),
                &mut Vec::new(),
            )
            .await;
        assert_eq!(reply["type"], "result", "{reply}");
    }
    let refused = voter
        .request(
            json!({"action":"call","id":"bad","actor":"poll/lunch","method":"vote","args":{"choice":"x"}}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(refused["code"], "bad_request", "{refused}");

    while replica.version < 3 {
        let applied = replica.apply(&watcher.frame().await, &json!({"votes": {}}));
        assert_eq!(applied, Applied::Applied, "frames arrive in order");
    }
    assert_eq!(replica.state, json!({"votes": {"pizza": 2, "sushi": 1}}));
    stack.shutdown().await;
}
