//! Helpers of the integration tests: local mode in-process on its own tables, and waiting on
//! a subscription until a condition holds (never a fixed sleep).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use statecast_client::{Backoff, Client, ConnectionState, Options, Subscription, Update};
use statecast_local::{LocalOptions, LocalStack};

/// How long any condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A table prefix no other test (or run) uses.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!(
        "client-{name}-{}-{nanos}-{}-",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Local mode on a free port with tables of its own.
pub async fn start_local(name: &str) -> LocalStack {
    start_with(LocalOptions {
        port: 0,
        table_prefix: unique_prefix(name),
        ..Default::default()
    })
    .await
}

pub async fn start_with(options: LocalOptions) -> LocalStack {
    LocalStack::start(options).await.expect("local stack starts")
}

/// Options that reconnect fast.
pub fn fast_options() -> Options {
    Options {
        token: None,
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            max_attempts: None,
        },
        call_timeout: Duration::from_secs(20),
    }
}

pub fn connect(url: &str) -> Client {
    Client::connect(url, fast_options()).expect("valid url")
}

/// The first update that satisfies `done`, with every update seen on the way pushed to `seen`.
pub async fn until(sub: &mut Subscription, seen: &mut Vec<Update>, done: impl Fn(&Update) -> bool) -> Update {
    let wait = async {
        while let Some(update) = sub.next().await {
            seen.push(update.clone());
            if done(&update) {
                return update;
            }
        }
        panic!("the subscription ended: {:?}", sub.error());
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("no matching update within {PATIENCE:?}; saw {seen:?}"))
}

/// The first update whose version is `version`.
pub async fn at_version(sub: &mut Subscription, version: u64) -> Update {
    until(sub, &mut Vec::new(), |u| u.version == version).await
}

/// Waits until the client's connection is in `state`.
pub async fn state_becomes(client: &Client, state: ConnectionState) {
    let mut watch = client.state();
    tokio::time::timeout(PATIENCE, watch.wait_for(|s| *s == state))
        .await
        .unwrap_or_else(|_| panic!("the connection did not become {state:?}"))
        .map(|_| ())
        .expect("the connection task is alive");
}
