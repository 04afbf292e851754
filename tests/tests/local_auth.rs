//! Local mode with `--auth jwt`: the `$connect` authorizer runs on every upgrade, its tenant
//! goes with the connection, and no connection can reach another tenant's actors.

use std::time::Duration;

use serde_json::json;
use statecast_authorizer::AuthConfig;
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::local::start_local;
use statecast_tests::ws_client::WsClient;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SECRET: &str = "local-test-secret-of-at-least-32-bytes!";

async fn start() -> LocalStack {
    let auth = AuthConfig::from_lookup(|name| (name == "JWT_SECRET").then(|| SECRET.to_owned())).expect("auth config");
    start_local(LocalOptions {
        auth: Some(auth),
        ..LocalOptions::default()
    })
    .await
}

fn token(tenant: &str, sub: &str) -> String {
    statecast_authorizer::mint_hs256(SECRET, tenant, sub, Duration::from_secs(600), None, None).expect("token")
}

async fn refused_status(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// Without a token, with a forged one or with one signed by another secret, the upgrade is
/// refused (403) and no connection exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_without_a_valid_token_are_refused() {
    let stack = start().await;
    assert_eq!(refused_status(stack.ws_url.clone()).await, 403);
    assert_eq!(refused_status(format!("{}?token=not.a.jwt", stack.ws_url)).await, 403);
    let foreign = statecast_authorizer::mint_hs256(
        "another-secret-that-is-long-enough-32b",
        "acme",
        "eve",
        Duration::from_secs(600),
        None,
        None,
    )
    .expect("token");
    assert_eq!(refused_status(format!("{}?token={foreign}", stack.ws_url)).await, 403);
    assert_eq!(stack.connection_count(), 0);
    stack.shutdown().await;
}

/// A tenant-A connection can neither subscribe to nor call tenant B's actor; its own
/// `todo/x` is a different actor from tenant B's `todo/x`, and B never sees A's changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_others_actors() {
    let stack = start().await;
    let mut a = WsClient::connect(&format!("{}?token={}", stack.ws_url, token("tenant-a", "alice"))).await;
    let mut b = WsClient::connect(&format!("{}?token={}", stack.ws_url, token("tenant-b", "bob"))).await;
    let subscribed = b
        .request(json!({"action":"subscribe","id":"s","actor":"todo/x"}), &mut Vec::new())
        .await;
    assert_eq!(subscribed["type"], "subscribed");

    for frame in [
        json!({"action":"subscribe","id":1,"actor":"tenant-b/todo/x"}),
        json!({"action":"call","id":2,"actor":"tenant-b/todo/x","method":"add","args":{"title":"pwned"}}),
    ] {
        let reply = a.request(frame, &mut Vec::new()).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], "forbidden", "{reply}");
    }
    let own = a
        .request(
            json!({"action":"call","id":3,"actor":"todo/x","method":"add","args":{"title":"mine"}}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(own["type"], "result", "{own}");
    assert!(
        b.is_quiet_for(Duration::from_millis(500)).await,
        "tenant B saw nothing of tenant A's actor"
    );

    let theirs = b
        .request(
            json!({"action":"call","id":4,"actor":"todo/x","method":"clear_done"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(
        theirs["version"],
        json!(0),
        "tenant B's todo/x was never written: {theirs}"
    );
    stack.shutdown().await;
}

/// A browser sends its token as `Sec-WebSocket-Protocol: bearer, <jwt>`: the upgrade is
/// accepted with the `bearer` subprotocol and the connection gets the token's tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_the_subprotocol_header_is_accepted_and_bearer_is_echoed() {
    let stack = start().await;
    let mut request = stack.ws_url.as_str().into_client_request().expect("request");
    let offered = format!("bearer, {}", token("tenant-a", "alice"));
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&offered).expect("header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade accepted");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()),
        Some(&b"bearer"[..])
    );
    let mut client = WsClient { socket };
    let reply = client
        .request(
            json!({"action":"subscribe","id":1,"actor":"tenant-a/counter/c"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(
        reply["type"], "subscribed",
        "the connection belongs to tenant-a: {reply}"
    );
    stack.shutdown().await;
}
