//! The `@connections` sender over real HTTP: the real `aws-sdk-apigatewaymanagement` client
//! posts to a tiny management API served on loopback, which answers like API Gateway does.

use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use statecast::connections_api::ApiGatewaySender;
use statecast::ports::ConnectionSender;
use statecast_tests::connection;
use tokio::net::TcpListener;

/// Every post the fake management API received: (connection id, body).
type Posts = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// `POST /@connections/{id}`: 410 `GoneException` for "gone", 429 `LimitExceededException`
/// for "throttled", a bare 429 for "throttled-bare", 500 for "broken", else 200.
async fn post_to_connection(State(posts): State<Posts>, Path(id): Path<String>, body: Bytes) -> Response {
    posts.lock().expect("posts lock").push((id.clone(), body.to_vec()));
    match id.as_str() {
        "gone" => (
            StatusCode::GONE,
            [
                ("x-amzn-errortype", "GoneException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"Gone"}"#,
        )
            .into_response(),
        "throttled" => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("x-amzn-errortype", "LimitExceededException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"Too Many Requests"}"#,
        )
            .into_response(),
        "throttled-bare" => StatusCode::TOO_MANY_REQUESTS.into_response(),
        "broken" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

/// Serves the fake management API on `127.0.0.1:0`; returns its endpoint and its log.
async fn start_management_api() -> (String, Posts) {
    let posts = Posts::default();
    let app = Router::new()
        .route("/@connections/{id}", post(post_to_connection))
        .with_state(posts.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), posts)
}

/// The production sender on a real SDK client pointed at `endpoint`, retrying as `retry` says.
async fn sender(endpoint: &str, retry: RetryConfig) -> ApiGatewaySender {
    let sdk = statecast_tests::loopback_sdk_config(endpoint).await;
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .retry_config(retry)
        .build();
    ApiGatewaySender::new(aws_sdk_apigatewaymanagement::Client::from_conf(config))
}

fn received(posts: &Posts) -> Vec<(String, Vec<u8>)> {
    posts.lock().expect("posts lock").clone()
}

/// A frame posted to a connection arrives byte-for-byte at `/@connections/{id}` for that id,
/// including a real API Gateway id whose `=` must survive the path encoding (it arrives as
/// `%3D`; the literal `@connections` segment arrives unencoded).
#[tokio::test]
async fn posted_frame_arrives_byte_for_byte_at_the_connection_path() {
    let (endpoint, posts) = start_management_api().await;
    let sender = sender(&endpoint, RetryConfig::standard()).await;
    let frame = r#"{"type":"delta","actor":"todo/groceries","epoch":1,"from":1,"to":2,"patch":[{"op":"replace","path":"/items/1/title","value":"café ☕ \"quoted\""}]}"#;

    sender.send(&connection("c1"), frame).await.expect("post to c1");
    sender
        .send(&connection("CxR9vdNgoAMCJ0w="), "{}")
        .await
        .expect("post to an API Gateway id");

    assert_eq!(
        received(&posts),
        vec![
            ("c1".to_owned(), frame.as_bytes().to_vec()),
            ("CxR9vdNgoAMCJ0w=".to_owned(), b"{}".to_vec()),
        ]
    );
}

/// A 410 `GoneException` becomes `Error::ConnectionGone` naming the connection, which is
/// what makes fan-out delete the connection instead of retrying.
#[tokio::test]
async fn gone_exception_becomes_connection_gone() {
    let (endpoint, posts) = start_management_api().await;
    let sender = sender(&endpoint, RetryConfig::standard()).await;
    let gone = connection("gone");

    let error = sender.send(&gone, "{}").await.expect_err("410 is an error");

    assert!(
        matches!(&error, statecast::Error::ConnectionGone(id) if id == &gone),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(received(&posts).len(), 1, "a 410 is not retried");
}

/// A 500 becomes a retryable `Error::Dependency`, so fan-out reports the record for retry.
#[tokio::test]
async fn server_error_becomes_a_retryable_dependency_error() {
    let (endpoint, posts) = start_management_api().await;
    let sender = sender(&endpoint, RetryConfig::disabled()).await;

    let error = sender
        .send(&connection("broken"), "{}")
        .await
        .expect_err("500 is an error");

    assert!(
        matches!(
            error,
            statecast::Error::Dependency {
                operation: "PostToConnection",
                retryable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(received(&posts), vec![("broken".to_owned(), b"{}".to_vec())]);
}

/// The sender as the Lambdas build it (`on_endpoint`), on the loopback SDK configuration.
async fn production_sender(endpoint: &str) -> ApiGatewaySender {
    let sdk = statecast_tests::loopback_sdk_config(endpoint).await;
    ApiGatewaySender::on_endpoint(&sdk, endpoint)
}

/// The production sender does not retry a 429 inside the SDK: the throttle reaches the
/// `Poster` at once as `Error::Throttled`, after one post, so it can back off and halve its
/// concurrency; a 429 without the modeled error type is a throttle too.
#[tokio::test]
async fn production_sender_surfaces_a_429_at_once_as_throttled() {
    let (endpoint, posts) = start_management_api().await;
    let sender = production_sender(&endpoint).await;

    for id in ["throttled", "throttled-bare"] {
        let error = sender.send(&connection(id), "{}").await.expect_err("429 is an error");
        assert!(
            matches!(
                error,
                statecast::Error::Throttled {
                    operation: "PostToConnection",
                    ..
                }
            ),
            "{id}: {error:?}"
        );
    }
    assert_eq!(
        received(&posts),
        vec![
            ("throttled".to_owned(), b"{}".to_vec()),
            ("throttled-bare".to_owned(), b"{}".to_vec())
        ],
        "each 429 was posted once"
    );
}

/// The production sender posts once and reports a 410 as `Error::ConnectionGone`, and a
/// 500 as a retryable `Error::Dependency` for the `Poster` to retry.
#[tokio::test]
async fn production_sender_posts_once_and_classifies_410_and_500() {
    let (endpoint, posts) = start_management_api().await;
    let sender = production_sender(&endpoint).await;
    let gone = connection("gone");

    let error = sender.send(&gone, "{}").await.expect_err("410 is an error");
    assert!(
        matches!(&error, statecast::Error::ConnectionGone(id) if id == &gone),
        "{error:?}"
    );
    let error = sender
        .send(&connection("broken"), "{}")
        .await
        .expect_err("500 is an error");
    assert!(
        matches!(error, statecast::Error::Dependency { retryable: true, .. }),
        "{error:?}"
    );
    sender.send(&connection("c1"), "{}").await.expect("post to c1");

    let ids: Vec<String> = received(&posts).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["gone", "broken", "c1"], "one post each");
}
