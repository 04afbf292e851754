//! Helpers of the hardening tests: a local stack per test, raw frames, a client that never
//! reads, a ~100 KB todo list, the process's resident memory.
#![allow(dead_code)]

use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::SubscriptionStore;
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::ws_client::{Socket, WsClient};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for a condition before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub use statecast_tests::local::{start_local as start, store};

/// On an ephemeral port with its own tables, always on the embedded engine (for what only it
/// has, such as the stream trimmer).
pub async fn start_embedded(options: LocalOptions) -> LocalStack {
    let options = LocalOptions {
        port: 0,
        dynamodb_endpoint: None,
        table_prefix: statecast_tests::unique_prefix(),
        ..options
    };
    LocalStack::start(options).await.expect("local stack starts")
}

/// Waits until `condition` holds, checking every few milliseconds; panics after [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `frames` as they are and flushes; a refusal by the server part way is not an error
/// here (the test then reads how the socket was closed).
pub async fn send_raw(socket: &mut Socket, frames: Vec<Frame>) {
    for frame in frames {
        if socket.feed(Message::Frame(frame)).await.is_err() {
            return;
        }
    }
    let _ = socket.flush().await;
}

/// `len` bytes of JSON text split into continuation frames of at most `fragment` bytes.
pub fn fragmented_text(len: usize, fragment: usize) -> Vec<Frame> {
    let text = format!(r#"{{"action":"ping","id":"{}"}}"#, "x".repeat(len - 27));
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(fragment).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 { OpData::Text } else { OpData::Continue };
            Frame::message(chunk.to_vec(), OpCode::Data(opcode), i == last)
        })
        .collect()
}

/// One text frame per JSON value.
pub fn text_frames(values: impl IntoIterator<Item = Value>) -> Vec<Frame> {
    values
        .into_iter()
        .map(|v| Frame::message(v.to_string().into_bytes(), OpCode::Data(OpData::Text), true))
        .collect()
}

/// Builds `todo/big` to about 100 KB of state: 200 `add`s with 490-character titles.
pub async fn build_big_todo(stack: &LocalStack) {
    let mut writer = WsClient::connect(&stack.ws_url).await;
    for n in 0..200 {
        let title = format!("{n:03}{}", "t".repeat(487));
        let reply = writer
            .request(
                json!({"action":"call","id":n,"actor":"todo/big","method":"add","args":{"title":title}}),
                &mut Vec::new(),
            )
            .await;
        assert_eq!(reply["type"], "result", "{reply}");
    }
}

/// Sends `frames` on a task, reading nothing: the socket is handed back when the sending is
/// done (or the server refused more), still unread.
pub fn send_without_reading(mut socket: Socket, frames: Vec<Frame>) -> JoinHandle<Socket> {
    tokio::spawn(async move {
        send_raw(&mut socket, frames).await;
        socket
    })
}

/// The connections subscribed to `actor` (a `tenant/type/id` key).
pub async fn subscribers(stack: &LocalStack, actor: &str) -> Vec<ConnectionId> {
    let key = ActorKey::parse(actor).expect("actor key");
    store(stack)
        .subscribers(&key, None)
        .await
        .expect("subscribers query")
        .connections
}

/// The `@connections` management client of `stack`, as the deployed fan-out builds it.
pub fn connections_client(stack: &LocalStack) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(&stack.sdk)
        .endpoint_url(&stack.connections_url)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// Whether `PostToConnection` to `id` answers 410 `GoneException`.
pub async fn post_is_gone(client: &aws_sdk_apigatewaymanagement::Client, id: &ConnectionId) -> bool {
    let posted = client
        .post_to_connection()
        .connection_id(id.as_str())
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            b"{\"type\":\"probe\"}".to_vec(),
        ))
        .send()
        .await;
    match posted {
        Ok(_) => false,
        Err(e) => {
            let gone = e.as_service_error().is_some_and(|s| s.is_gone_exception());
            assert!(gone, "a post failed otherwise than 410: {e:?}");
            true
        }
    }
}

/// The resident set size of this process (`VmRSS` of /proc/self/status), in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("a VmRSS line in kB");
    kib * 1024
}

/// How many records the stream of `table` holds, read through the Streams API from the trim
/// horizon of every shard.
pub async fn stream_record_count(stack: &LocalStack, table: &str) -> usize {
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(&stack.sdk);
    let arn = statecast_local::esm::stream_arn(&dynamo, table)
        .await
        .expect("stream arn");
    let described = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe");
    let shards = described.stream_description.and_then(|d| d.shards).unwrap_or_default();
    let mut count = 0;
    for shard in shards {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator");
        let mut next = iterator.shard_iterator;
        while let Some(iterator) = next {
            let page = streams
                .get_records()
                .shard_iterator(iterator)
                .limit(1000)
                .send()
                .await
                .expect("records");
            let records = page.records.unwrap_or_default().len();
            if records == 0 {
                break;
            }
            count += records;
            next = page.next_shard_iterator;
        }
    }
    count
}

/// The version a change frame (`delta` or `snapshot`) brings its subscriber to.
pub fn version_of(frame: &Value) -> u64 {
    frame
        .get("to")
        .or_else(|| frame.get("version"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("not a change frame: {frame}"))
}

/// The next change frame, skipping replies to requests.
pub async fn next_change(client: &mut WsClient) -> Value {
    loop {
        let frame = client.frame().await;
        if frame["type"] != "result" {
            return frame;
        }
    }
}
