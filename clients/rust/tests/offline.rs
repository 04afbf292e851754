//! The client without a server: calls time out, giving up after `max_attempts` closes the
//! client, and a closed client refuses new work.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use statecast_client::{Backoff, Client, ClientError, ConnectionState, Options, SubscribeOptions};

/// A URL where nothing listens.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    format!("ws://127.0.0.1:{port}/local")
}

/// A call nobody answers fails with `Timeout` after the call timeout.
#[tokio::test]
async fn a_call_without_an_answer_times_out() {
    let options = Options {
        call_timeout: Duration::from_millis(200),
        backoff: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            max_attempts: None,
        },
        token: None,
    };
    let client = Client::connect(&nowhere(), options).expect("valid url");
    assert_eq!(
        client.call("counter/c", "get", Value::Null).await,
        Err(ClientError::Timeout)
    );
}

/// After `max_attempts` failed attempts the client is `Closed`: pending calls and
/// subscriptions end with `Closed`, and so does anything asked afterwards.
#[tokio::test]
async fn giving_up_closes_the_client() {
    let options = Options {
        call_timeout: Duration::from_secs(30),
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            max_attempts: Some(3),
        },
        token: None,
    };
    let client = Client::connect(&nowhere(), options).expect("valid url");
    let mut sub = client.subscribe("counter/c", SubscribeOptions::default());
    assert_eq!(
        client.call("counter/c", "get", Value::Null).await,
        Err(ClientError::Closed)
    );
    assert_eq!(*client.state().borrow(), ConnectionState::Closed);
    assert_eq!(sub.next().await, None);
    assert_eq!(sub.error(), Some(&ClientError::Closed));
    let mut late = client.subscribe("counter/d", SubscribeOptions::default());
    assert_eq!(late.next().await, None);
    assert_eq!(late.error(), Some(&ClientError::Closed));
}

/// A URL that is not one is refused at once.
#[tokio::test]
async fn an_invalid_url_is_refused() {
    let refused = Client::connect("not a url", Options::default());
    assert!(matches!(refused, Err(ClientError::InvalidRequest(_))));
}
