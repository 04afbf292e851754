//! Local mode against hostile and unlucky clients (issue 11): frames that break the protocol,
//! oversized fragmented messages, clients that stop reading, frames handled concurrently,
//! restarts with `--data` and a stream that must not grow for ever.

mod hostile;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use statecast::ports::ConnectionStore;
use statecast_local::engine::StreamRetention;
use statecast_local::gateway::Limits;
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::ws_client::{Received, WsClient, FRAME_TIMEOUT};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;

use hostile::*;

/// A text frame whose payload is not UTF-8 is closed with 1007 (RFC 6455 §8.1), not with an
/// empty close frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let stack = start(LocalOptions::default()).await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let payload = b"{\"action\":\"ping\",\"id\":\"\xff\xfe\"}".to_vec();
    let frame = Frame::message(payload, OpCode::Data(OpData::Text), true);
    send_raw(&mut client.socket, vec![frame]).await;
    assert_eq!(client.next().await, Received::Closed(Some(1007)));
    stack.shutdown().await;
}

/// Frames that break the framing rules (here: a reserved data opcode) close with 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_opcode_closes_with_1002() {
    let stack = start(LocalOptions::default()).await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let frame = Frame::message(b"{}".to_vec(), OpCode::Data(OpData::Reserved(3)), true);
    send_raw(&mut client.socket, vec![frame]).await;
    assert_eq!(client.next().await, Received::Closed(Some(1002)));
    stack.shutdown().await;
}

/// A 150 KB message in 16 KB continuation frames is over the 128 KB limit: the client reads a
/// 1009 close every time, although it was still sending when the server gave up reading, and
/// the server then closes TCP in order (FIN), never with a reset that would make a client
/// drop the close frame it has not read yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_oversized_message_gets_1009_every_time() {
    let stack = start(LocalOptions::default()).await;
    for attempt in 0..50 {
        let mut client = WsClient::connect(&stack.ws_url).await;
        let mut frames = fragmented_text(150 * 1024, 16 * 1024);
        // A client does not stop sending the moment the server stops reading.
        frames.extend(fragmented_text(100 * 1024, 16 * 1024));
        send_raw(&mut client.socket, frames).await;
        assert_eq!(client.next().await, Received::Closed(Some(1009)), "attempt {attempt}");
        assert_eq!(ending(&mut client).await, Ok(()), "attempt {attempt}");
    }
    stack.shutdown().await;
}

/// Reads what follows a close frame: `Ok` when the connection then ends in order (EOF),
/// `Err` with the error when it is reset.
async fn ending(client: &mut WsClient) -> Result<(), String> {
    loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, client.socket.next())
            .await
            .expect("the connection ends in time");
        match next {
            None | Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => return Ok(()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// A client that sends 1,000 `subscribe`s for a ~100 KB actor and reads nothing is closed
/// once 1 MiB of replies waits for it: its `$disconnect` runs, posts to it answer 410, another
/// subscriber keeps receiving, and when it reads again it finds a 1008 close after the
/// replies that were already on their way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_and_posts_to_it_answer_410() {
    let limits = Limits {
        // Long enough for the test to start reading before the server drops the socket.
        close_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let stack = start(LocalOptions {
        limits,
        ..LocalOptions::default()
    })
    .await;
    build_big_todo(&stack).await;
    let mut reader = WsClient::connect(&stack.ws_url).await;
    let subscribed = reader
        .request(
            json!({"action":"subscribe","id":"r","actor":"todo/big"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["version"], json!(200), "{}", subscribed["type"]);
    let reader_id = subscribers(&stack, "dev/todo/big").await;
    assert_eq!(reader_id.len(), 1);

    let mut stuck = WsClient::connect(&stack.ws_url).await.socket;
    let first = json!({"action":"subscribe","id":"first","actor":"todo/big"});
    send_raw(&mut stuck, text_frames([first])).await;
    wait_until("the stuck client is subscribed", || async {
        subscribers(&stack, "dev/todo/big").await.len() == 2
    })
    .await;
    let stuck_id = subscribers(&stack, "dev/todo/big")
        .await
        .into_iter()
        .find(|id| !reader_id.contains(id))
        .expect("the stuck client's connection id");
    let more = (0..1000).map(|i| json!({"action":"subscribe","id":i,"actor":"todo/big"}));
    let sending = send_without_reading(stuck, text_frames(more));

    wait_until("the stuck client's $disconnect removed its subscription", || async {
        subscribers(&stack, "dev/todo/big").await == reader_id
    })
    .await;
    assert!(post_is_gone(&connections_client(&stack), &stuck_id).await);
    let record = store(&stack).get_connection(&stuck_id).await.expect("get connection");
    assert!(
        record.is_none(),
        "$disconnect deleted the connection record: {record:?}"
    );

    let mut writer = WsClient::connect(&stack.ws_url).await;
    let toggle = json!({"action":"call","id":"t","actor":"todo/big","method":"toggle","args":{"id":"1"}});
    assert_eq!(writer.request(toggle, &mut Vec::new()).await["version"], json!(201));
    // The last `add`'s change may reach the reader after it subscribed: older ones are dropped.
    let change = loop {
        let frame = next_change(&mut reader).await;
        if version_of(&frame) > 200 {
            break frame;
        }
    };
    assert_eq!(version_of(&change), 201, "{change}");

    let mut stuck = WsClient {
        socket: sending.await.expect("sender task"),
    };
    let mut replies = 0;
    loop {
        match stuck.next().await {
            Received::Frame(frame) => {
                assert_eq!(frame["type"], "subscribed", "{}", frame["type"]);
                replies += 1;
            }
            Received::Closed(code) => {
                assert_eq!(code, Some(1008), "after {replies} replies");
                break;
            }
        }
    }
    assert!(replies < 1000, "the server stopped producing replies: {replies}");
    stack.shutdown().await;
}

/// With `max_concurrent_frames` on, the real `$default` handler gets the frames of one
/// connection concurrently (as API Gateway may invoke it): 90 pings, calls and subscribes
/// sent at once each get exactly one reply, whatever the order, and the calls all took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_frames_of_one_connection_each_get_one_reply() {
    let limits = Limits {
        max_concurrent_frames: 8,
        ..Limits::default()
    };
    let stack = start(LocalOptions {
        limits,
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let frames: Vec<_> = (0..30)
        .flat_map(|i| {
            [
                json!({"action":"ping","id":format!("p{i}")}),
                json!({"action":"call","id":format!("c{i}"),"actor":format!("counter/k{i}"),"method":"increment"}),
                json!({"action":"subscribe","id":format!("s{i}"),"actor":format!("counter/s{i}")}),
            ]
        })
        .collect();
    let sent = frames.len();
    send_raw(&mut client.socket, text_frames(frames)).await;
    let mut replies = std::collections::BTreeMap::new();
    while replies.len() < sent {
        let reply = client.frame().await;
        let id = reply["id"].as_str().expect("a reply to a request").to_owned();
        let expected = match &id[..1] {
            "p" => "pong",
            "c" => "result",
            _ => "subscribed",
        };
        assert_eq!(reply["type"], expected, "{reply}");
        *replies.entry(id).or_insert(0) += 1;
    }
    let mut stray = Vec::new();
    let last = client.request(json!({"action":"ping","id":"last"}), &mut stray).await;
    assert_eq!(last["type"], "pong");
    assert!(stray.is_empty(), "extra replies: {stray:?}");
    assert!(replies.values().all(|n| *n == 1), "{replies:?}");
    for i in 0..30 {
        let key = statecast::ids::ActorKey::parse(&format!("dev/counter/k{i}")).expect("key");
        let stored = statecast::ports::ActorStore::load(&store(&stack), &key)
            .await
            .expect("load");
        assert_eq!(stored.map(|a| a.version.0), Some(1), "counter/k{i}");
    }
    stack.shutdown().await;
}

/// Local mode with `--auth jwt` and a browser-style handshake offering the token alone as the
/// subprotocol (`Sec-WebSocket-Protocol: <jwt>`, no `bearer`): refused with 401 by the
/// authorizer, as on AWS, before any connection is stored — `$connect` could not select that
/// protocol and a browser would abort the handshake after the connection was registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_offered_as_a_bare_subprotocol_is_refused_with_401() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    const SECRET: &str = "local-test-secret-of-at-least-32-bytes!";
    let auth = statecast_authorizer::AuthConfig::from_lookup(|name| (name == "JWT_SECRET").then(|| SECRET.to_owned()))
        .expect("auth config");
    let stack = start(LocalOptions {
        auth: Some(auth),
        ..LocalOptions::default()
    })
    .await;
    let token =
        statecast_authorizer::mint_hs256(SECRET, "acme", "alice", Duration::from_secs(600), None, None).expect("token");
    let mut request = stack.ws_url.as_str().into_client_request().expect("request");
    let header = HeaderValue::from_str(&token).expect("header");
    request.headers_mut().insert("sec-websocket-protocol", header);
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok((_, response)) => panic!(
            "the upgrade was accepted, selecting {:?}",
            response.headers().get("sec-websocket-protocol")
        ),
    }
    assert_eq!(stack.connection_count(), 0);
    stack.shutdown().await;
}

/// A stack restarted on the same `--data` file resumes each event source mapping after the
/// last record it processed (as AWS keeps a mapping's position across deployments): after 100
/// delivered increments and a clean shutdown, a new subscriber's first change frame is the
/// next write's, not one of the 100 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_file_sends_no_stale_changes() {
    let data = std::env::temp_dir().join(format!("{}restart.db", statecast_tests::unique_prefix()));
    let options = LocalOptions {
        port: 0,
        data: Some(data.clone()),
        table_prefix: statecast_tests::unique_prefix(),
        // Records stay in the stream: only the saved position keeps them from being re-sent.
        stream_retention: StreamRetention {
            trim_processed: false,
            ..StreamRetention::default()
        },
        ..LocalOptions::default()
    };
    let stack = LocalStack::start(options.clone()).await.expect("first start");
    let mut client = WsClient::connect(&stack.ws_url).await;
    client
        .request(
            json!({"action":"subscribe","id":"s","actor":"counter/restart"}),
            &mut Vec::new(),
        )
        .await;
    for i in 0..100 {
        let call = json!({"action":"call","id":i,"actor":"counter/restart","method":"increment"});
        client.send(call).await;
    }
    let mut seen = 0;
    while seen < 100 {
        seen = seen.max(version_of(&next_change(&mut client).await));
    }
    drop(client);
    stack.shutdown().await;

    let stack = LocalStack::start(options).await.expect("restart on the same file");
    let mut client = WsClient::connect(&stack.ws_url).await;
    // Change frames that come before a reply are kept here, in order.
    let mut early = Vec::new();
    let subscribed = client
        .request(
            json!({"action":"subscribe","id":"s","actor":"counter/restart"}),
            &mut early,
        )
        .await;
    assert_eq!(subscribed["version"], json!(100), "{subscribed}");
    let fresh = client
        .request(
            json!({"action":"call","id":"fresh","actor":"counter/restart","method":"increment"}),
            &mut early,
        )
        .await;
    assert_eq!(fresh["version"], json!(101), "{fresh}");
    let first = match early.into_iter().next() {
        Some(frame) => frame,
        None => next_change(&mut client).await,
    };
    assert_eq!(version_of(&first), 101, "a stale change arrived first: {first}");
    stack.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", data.display()));
    }
}

/// The embedded engine's stream does not keep every image for ever: once the fan-out has
/// processed them, the records of 100 renames of a ~26 KB todo list are trimmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_stream_records_are_trimmed() {
    let stack = start_embedded(LocalOptions {
        stream_retention: StreamRetention {
            interval: Duration::from_millis(50),
            ..StreamRetention::default()
        },
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    for n in 0..50 {
        let title = format!("{n:03}{}", "t".repeat(497));
        let add = json!({"action":"call","id":n,"actor":"todo/fat","method":"add","args":{"title":title}});
        assert_eq!(client.request(add, &mut Vec::new()).await["type"], "result");
    }
    for n in 0..100 {
        let title = format!("{n:03}{}", "r".repeat(497));
        let id = (n % 50 + 1).to_string();
        let rename =
            json!({"action":"call","id":n,"actor":"todo/fat","method":"rename","args":{"id":id,"title":title}});
        assert_eq!(client.request(rename, &mut Vec::new()).await["type"], "result");
    }
    assert!(
        stack.esm.wait_idle(DEADLINE).await,
        "the fan-out processed every record"
    );
    wait_until("the processed records are trimmed", || async {
        stream_record_count(&stack, &stack.tables.actors).await <= 1
    })
    .await;
    stack.shutdown().await;
}

/// Records older than the retention are trimmed even when no mapping reads them (DynamoDB
/// Streams keeps records 24 hours; here the test shortens it to one second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_records_older_than_the_retention_are_trimmed() {
    let stack = start_embedded(LocalOptions {
        stream_retention: StreamRetention {
            max_age: Duration::from_secs(1),
            trim_processed: false,
            interval: Duration::from_millis(50),
        },
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    for n in 0..20 {
        let call = json!({"action":"call","id":n,"actor":"counter/aging","method":"increment"});
        assert_eq!(client.request(call, &mut Vec::new()).await["type"], "result");
    }
    wait_until("records older than the retention are trimmed", || async {
        stream_record_count(&stack, &stack.tables.actors).await <= 1
    })
    .await;
    stack.shutdown().await;
}

/// Without auth, a client offering only subprotocols `$connect` cannot select (here `chat.v2`)
/// is refused with 400 before any connection is stored, instead of being registered and then
/// dropped by a client that aborts a handshake selecting none of its protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_of_subprotocols_none_of_which_can_be_selected_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let stack = start(LocalOptions::default()).await;
    let mut request = stack.ws_url.as_str().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("chat.v2"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
    assert_eq!(stack.connection_count(), 0);
    stack.shutdown().await;
}

/// `DELETE @connections/{id}` ends the connection at once: a post right after it answers 410
/// even before the client has answered the close, its `$disconnect` runs, and the client
/// still gets what was posted before the delete, then a 1000 close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_connection_ends_it_at_once_after_what_was_posted() {
    let stack = start(LocalOptions::default()).await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    client
        .request(
            json!({"action":"subscribe","id":"s","actor":"counter/deleted"}),
            &mut Vec::new(),
        )
        .await;
    let ids = subscribers(&stack, "dev/counter/deleted").await;
    let id = ids.first().expect("the client's connection id").as_str();
    let api = connections_client(&stack);
    let data = aws_sdk_apigatewaymanagement::primitives::Blob::new(br#"{"type":"farewell"}"#.to_vec());
    api.post_to_connection()
        .connection_id(id)
        .data(data)
        .send()
        .await
        .expect("posted");
    api.delete_connection().connection_id(id).send().await.expect("deleted");
    assert!(post_is_gone(&api, &ids[0]).await, "posts after DELETE answer 410");
    wait_until("$disconnect removed the subscription", || async {
        subscribers(&stack, "dev/counter/deleted").await.is_empty()
    })
    .await;
    assert_eq!(client.frame().await, json!({"type":"farewell"}));
    assert_eq!(client.next().await, Received::Closed(Some(1000)));
    stack.shutdown().await;
}
