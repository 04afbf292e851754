//! The client across a server restart: it reconnects with back-off, re-sends the call made
//! while the server was down, resumes its subscription and holds the stored state.

mod support;

use serde_json::{json, Value};
use statecast_client::{Client, ConnectionState, SubscribeOptions};
use statecast_local::LocalOptions;
use support::{at_version, connect, fast_options, start_with, state_becomes, unique_prefix, until};

/// Stop local mode (every socket closes) and start it again on the same port and data file:
/// the client goes `Reconnecting`, then `Open`; the call made meanwhile is answered once; the
/// subscription continues without duplicates and holds what a fresh subscriber reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_restart_and_resumes_the_stored_state() {
    let prefix = unique_prefix("restart");
    let data = std::env::temp_dir().join(format!("{prefix}data.sqlite"));
    let options = |port| LocalOptions {
        port,
        table_prefix: prefix.clone(),
        data: Some(data.clone()),
        ..Default::default()
    };
    let stack = start_with(options(0)).await;
    let port: u16 = stack
        .ws_url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the url");
    let url = stack.ws_url.clone();
    let client = Client::connect(
        &url,
        statecast_client::Options {
            token: Some("a-token".into()),
            ..fast_options()
        },
    )
    .expect("valid url");
    let mut sub = client.subscribe("counter/restart", SubscribeOptions::default());
    at_version(&mut sub, 0).await;
    for _ in 0..3 {
        client
            .call("counter/restart", "increment", Value::Null)
            .await
            .expect("incremented");
    }
    let mut seen = Vec::new();
    let before = until(&mut sub, &mut seen, |u| u.version == 3).await;
    state_becomes(&client, ConnectionState::Open).await;

    stack.shutdown().await;
    state_becomes(&client, ConnectionState::Reconnecting).await;
    let caller = client.clone();
    let call = tokio::spawn(async move { caller.call("counter/restart", "increment", Value::Null).await });

    let stack = start_with(options(port)).await;
    state_becomes(&client, ConnectionState::Open).await;
    assert_eq!(
        call.await.expect("the call task"),
        Ok(json!(4)),
        "answered once, after the reconnect"
    );
    let after = until(&mut sub, &mut seen, |u| u.version == 4).await;
    assert_eq!(after.epoch, before.epoch);
    assert_eq!(*after.state, json!({"value": 4}));
    let versions: Vec<u64> = seen.iter().map(|u| u.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {versions:?}"
    );

    // What the store holds, as a fresh subscriber reads it.
    let fresh = connect(&url);
    let mut stored = fresh.subscribe("counter/restart", SubscribeOptions::default());
    let stored = at_version(&mut stored, 4).await;
    assert_eq!(stored.state, after.state);
    assert_eq!(fresh.call("counter/restart", "get", Value::Null).await, Ok(json!(4)));
    stack.shutdown().await;
    let _ = std::fs::remove_file(&data);
}
