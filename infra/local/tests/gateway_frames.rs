//! The gateway emulator with route handlers written for the test: frames of one connection
//! handled one at a time by default, or overlapping with `Limits::max_concurrent_frames` as
//! API Gateway may invoke them, each frame answered exactly once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use statecast_local::gateway::{router, Gateway, Limits, Routes, WsHandler};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `$default` that echoes the frame's `id`; a frame with `"slow": true` first waits for a
/// permit of `release` (so the test decides when it may finish).
fn echo_route(release: Arc<Semaphore>) -> WsHandler {
    Arc::new(move |event| {
        let release = release.clone();
        Box::pin(async move {
            let frame: Value = serde_json::from_str(event.body.as_deref().unwrap_or("{}"))?;
            if frame["slow"] == json!(true) {
                release.acquire().await?.forget();
            }
            Ok(reply(json!({"id": frame["id"]}).to_string()))
        })
    })
}

fn reply(body: String) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response.body = Some(Body::Text(body));
    response
}

/// Serves a gateway whose `$default` is [`echo_route`] on `127.0.0.1:0`; returns its URL.
async fn serve(limits: Limits, release: Arc<Semaphore>) -> (String, watch::Sender<bool>) {
    let ok: WsHandler = Arc::new(|_| Box::pin(async { Ok(reply(String::new())) }));
    let routes = Routes {
        authorizer: None,
        connect: ok.clone(),
        disconnect: ok,
        default: echo_route(release),
    };
    let (stop, stopped) = watch::channel(false);
    let gateway = Arc::new(Gateway::new(
        routes,
        limits,
        "local".into(),
        "localhost".into(),
        stopped,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(gateway).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("ws://{addr}/local"), stop)
}

async fn connect(url: &str) -> Client {
    tokio_tungstenite::connect_async(url).await.expect("connects").0
}

/// The `id` of the next reply.
async fn next_id(client: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a reply in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let reply: Value = serde_json::from_str(text.as_str()).expect("JSON");
            return reply["id"].clone();
        }
    }
}

/// With concurrent frames on, a frame whose handler is slow does not hold up the frames after
/// it: the next frame's reply arrives while the slow one is still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_frame_does_not_hold_up_the_next_when_frames_are_concurrent() {
    let release = Arc::new(Semaphore::new(0));
    let limits = Limits {
        max_concurrent_frames: 8,
        ..Limits::default()
    };
    let (url, _stop) = serve(limits, release.clone()).await;
    let mut client = connect(&url).await;
    for frame in [json!({"id": "slow", "slow": true}), json!({"id": "fast"})] {
        client
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("sent");
    }
    assert_eq!(next_id(&mut client).await, json!("fast"));
    release.add_permits(1);
    assert_eq!(next_id(&mut client).await, json!("slow"));
}

/// 200 frames on one connection, every third one waiting until all were sent: every frame
/// gets exactly one reply (in whatever order), and nothing more comes before the reply to a
/// frame sent after them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_gets_exactly_one_reply_when_frames_are_concurrent() {
    let release = Arc::new(Semaphore::new(0));
    let limits = Limits {
        max_concurrent_frames: 16,
        ..Limits::default()
    };
    let (url, _stop) = serve(limits, release.clone()).await;
    let mut client = connect(&url).await;
    let sent: u64 = 200;
    for id in 0..sent {
        let frame = json!({"id": id, "slow": id % 3 == 0});
        client
            .feed(Message::Text(frame.to_string().into()))
            .await
            .expect("queued");
    }
    client.flush().await.expect("sent");
    release.add_permits(sent as usize);
    let mut replies: HashMap<u64, usize> = HashMap::new();
    while replies.len() < sent as usize {
        let id = next_id(&mut client).await;
        *replies.entry(id.as_u64().expect("numeric id")).or_insert(0) += 1;
    }
    client
        .send(Message::Text(json!({"id": "last"}).to_string().into()))
        .await
        .expect("sent");
    assert_eq!(next_id(&mut client).await, json!("last"));
    assert!(replies.values().all(|n| *n == 1), "{replies:?}");
    assert_eq!(replies.keys().copied().max(), Some(sent - 1));
}
