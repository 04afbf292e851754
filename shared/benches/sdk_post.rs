//! CPU per delivery of the `@connections` sender on the deployed path: the production
//! `ApiGatewaySender` (the real `aws-sdk-apigatewaymanagement` client, SigV4 over HTTP, built by
//! `on_endpoint` from an `SdkConfig` loaded as `main` loads it, with an explicit region and static
//! credentials) posts ~200-byte frames to a minimal management API on 127.0.0.1, 32 in flight.
//! Beside it: the same sender on the SDK's client defaults (what `on_endpoint` built before it
//! was tuned), and a raw hyper client posting the same requests unsigned, the floor.
//!
//! Each client runs alone on a current-thread runtime on a thread of its own, so that thread's
//! on-CPU time (`/proc/thread-self/schedstat`, nanoseconds; kernel time included) is the
//! client's whole cost; the server runs on another thread. The three alternate each round;
//! the summary is the median over rounds.
//!
//! `cargo bench -p statecast --bench sdk_post [-- POSTS ROUNDS [defaults|on_endpoint|raw]]`: a
//! client named last runs alone, for a whole-process comparison (`/usr/bin/time`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, Region};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use statecast::connections_api::ApiGatewaySender;
use statecast::ids::ConnectionId;
use statecast::ports::ConnectionSender;
use tokio::net::TcpListener;

/// The allocator the Lambda binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 32;
/// Posts before each measured run: connections are open and credentials cached after it.
const WARM_UP: usize = 1_000;
/// Distinct connection ids posted to, round robin.
const CONNECTIONS: usize = 1_000;

/// Answers every request with an empty 200, as `PostToConnection` does on success.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    debug_assert!(request.uri().path().starts_with("/@connections/"));
    // Read the body, as API Gateway does, before answering.
    let _ = request.into_body().collect().await;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::new()))
        .expect("response"))
}

/// Serves the management API on 127.0.0.1:0 from its own thread; returns the address.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::Builder::new().name("server".into());
    server
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
                tx.send(listener.local_addr().expect("local addr"))
                    .expect("send address");
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(answer);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .expect("server thread");
    rx.recv().expect("server address")
}

/// A realistic frame of about 200 bytes.
fn frame() -> String {
    let frame = r#"{"type":"delta","actor":"todo/groceries","epoch":1795435210000,"from":41,"to":42,"patch":[{"op":"replace","path":"/items/3/title","value":"oat milk, 2 l"},{"op":"replace","path":"/items/3/done","value":true}]}"#;
    frame.to_owned()
}

/// API Gateway-like connection ids (`=`, which the path encodes, included).
fn connections() -> Vec<ConnectionId> {
    (0..CONNECTIONS)
        .map(|i| ConnectionId::new(format!("CxR9vdNgo{i:05}=")).expect("connection id"))
        .collect()
}

/// The calling thread's on-CPU time so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("read schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .expect("schedstat on-CPU time")
}

/// What one measured run of `posts` deliveries cost the client thread.
struct Run {
    cpu_us_per_post: f64,
    wall_us_per_post: f64,
}

/// Posts `posts` frames (`CONCURRENCY` in flight) with `post`, after a warm-up, and measures.
async fn measure<F, Fut>(posts: usize, post: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    futures::stream::iter(0..WARM_UP)
        .for_each_concurrent(CONCURRENCY, &post)
        .await;
    let (cpu, wall) = (thread_cpu_ns(), Instant::now());
    futures::stream::iter(0..posts)
        .for_each_concurrent(CONCURRENCY, &post)
        .await;
    let cpu = thread_cpu_ns() - cpu;
    Run {
        cpu_us_per_post: cpu as f64 / 1_000.0 / posts as f64,
        wall_us_per_post: wall.elapsed().as_secs_f64() * 1e6 / posts as f64,
    }
}

/// The production `SdkConfig`, as the Lambdas' `main` loads it, with a region and static
/// credentials set so nothing but the loopback server is ever contacted.
async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "bench"))
        .load()
        .await
}

/// Which SDK client posts.
#[derive(Clone, Copy)]
enum Sdk {
    /// The SDK's defaults for the client (`on_endpoint` before it was tuned).
    Defaults,
    /// The production sender: `ApiGatewaySender::on_endpoint`.
    Production,
}

async fn sdk_run(endpoint: &str, posts: usize, which: Sdk) -> Run {
    let sdk = sdk_config().await;
    let sender = match which {
        Sdk::Defaults => {
            let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
                .endpoint_url(endpoint)
                .build();
            ApiGatewaySender::new(aws_sdk_apigatewaymanagement::Client::from_conf(config))
        }
        Sdk::Production => ApiGatewaySender::on_endpoint(&sdk, endpoint),
    };
    let (connections, frame) = (connections(), frame());
    measure(posts, |i| {
        let (sender, to, frame) = (&sender, &connections[i % CONNECTIONS], &frame);
        async move { sender.send(to, frame).await.expect("post") }
    })
    .await
}

/// The same requests, unsigned, through hyper's pooled client.
async fn raw_run(endpoint: &str, posts: usize) -> Run {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let client: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>> = client;
    let uris: Arc<Vec<hyper::Uri>> = Arc::new(
        connections()
            .iter()
            .map(|c| {
                let id = c.as_str().replace('=', "%3D");
                format!("{endpoint}/@connections/{id}").parse().expect("uri")
            })
            .collect(),
    );
    let frame = Bytes::from(frame());
    measure(posts, |i| {
        let request = Request::post(uris[i % CONNECTIONS].clone())
            .header("content-type", "application/json")
            .body(Full::new(frame.clone()))
            .expect("request");
        let response = client.request(request);
        async move {
            let response = response.await.expect("post");
            assert!(response.status().is_success());
            let _ = response.into_body().collect().await;
        }
    })
    .await
}

/// Runs `run` on a thread of its own named `name` (a profiler tells the clients apart by it).
fn on_client_thread(name: &str, run: impl FnOnce() -> Run + Send + 'static) -> Run {
    let thread = std::thread::Builder::new().name(name.to_owned());
    thread.spawn(run).expect("client thread").join().expect("client run")
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; positional numbers override the defaults.
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let posts = numbers.first().copied().unwrap_or(20_000);
    let rounds = numbers.get(1).copied().unwrap_or(7);
    let endpoint = format!("http://{}", start_server());
    let only = std::env::args()
        .skip(1)
        .find(|a| ["defaults", "on_endpoint", "raw"].contains(&a.as_str()));
    if let Some(only) = only {
        let run = move || {
            let runtime = client_runtime();
            match only.as_str() {
                "defaults" => runtime.block_on(sdk_run(&endpoint, posts, Sdk::Defaults)),
                "on_endpoint" => runtime.block_on(sdk_run(&endpoint, posts, Sdk::Production)),
                _ => runtime.block_on(raw_run(&endpoint, posts)),
            }
        };
        let run = on_client_thread("client", run);
        println!("{posts} posts: {:.1} µs CPU per post", run.cpu_us_per_post);
        return;
    }

    let (mut defaults, mut production, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let e = endpoint.clone();
        let d = on_client_thread("sdk-defaults", move || {
            client_runtime().block_on(sdk_run(&e, posts, Sdk::Defaults))
        });
        let e = endpoint.clone();
        let p = on_client_thread("sdk", move || {
            client_runtime().block_on(sdk_run(&e, posts, Sdk::Production))
        });
        let e = endpoint.clone();
        let r = on_client_thread("raw", move || client_runtime().block_on(raw_run(&e, posts)));
        println!(
            "round {round}: µs CPU (wall) per post: sdk defaults {:.1} ({:.1}), on_endpoint {:.1} ({:.1}), \
             raw hyper {:.1} ({:.1})",
            d.cpu_us_per_post,
            d.wall_us_per_post,
            p.cpu_us_per_post,
            p.wall_us_per_post,
            r.cpu_us_per_post,
            r.wall_us_per_post
        );
        defaults.push(d.cpu_us_per_post);
        production.push(p.cpu_us_per_post);
        raw.push(r.cpu_us_per_post);
    }
    let (defaults, production, raw) = (median(defaults), median(production), median(raw));
    println!(
        "sdk_post: {posts} posts x {rounds} rounds, {CONCURRENCY} in flight, client CPU per delivery (median): \
         sdk defaults {defaults:.1} µs ({:.2}x raw), on_endpoint {production:.1} µs ({:.2}x raw), raw hyper {raw:.1} µs",
        defaults / raw,
        production / raw
    );
}
