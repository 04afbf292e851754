//! `cargo run -p statecast-local`: the whole stack on this machine, printing the `ws://` URL.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use statecast_local::{LocalOptions, LocalStack};

/// Runs the WebSocket API, @connections, DynamoDB with Streams and the fan-out locally.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port for WebSocket clients and @connections (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Stage name, the first path segment of the URLs.
    #[arg(long, default_value = "local")]
    stage: String,
    /// Keep data in this SQLite file across restarts (default: in memory).
    #[arg(long, conflicts_with = "dynamodb_endpoint")]
    data: Option<PathBuf>,
    /// Use this DynamoDB-compatible endpoint (e.g. DynamoDB Local) instead of the embedded engine.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Prefix of the table names.
    #[arg(long, default_value = "statecast-")]
    table_prefix: String,
    /// Tenant of every connection (auth is off in local mode).
    #[arg(long, default_value = "dev")]
    dev_tenant: String,
    /// Seconds between TTL sweeps of the embedded engine.
    #[arg(long, default_value_t = 60)]
    ttl_sweep_secs: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn,dynoxide=error".into()),
        )
        .init();
    let args = Args::parse();
    let started = Instant::now();
    let options = LocalOptions {
        host: args.host,
        port: args.port,
        stage: args.stage,
        data: args.data,
        dynamodb_endpoint: args.dynamodb_endpoint,
        table_prefix: args.table_prefix,
        dev_tenant: Some(args.dev_tenant.clone()),
        ttl_sweep_interval: Duration::from_secs(args.ttl_sweep_secs.max(1)),
        ..LocalOptions::default()
    };
    let stack = LocalStack::start(options).await?;
    println!("statecast local stack ready in {} ms", started.elapsed().as_millis());
    println!("  WebSocket:    {}", stack.ws_url);
    println!("  @connections: {}", stack.connections_url);
    println!("  DynamoDB:     {}", stack.dynamodb_endpoint);
    println!("  auth: off — every connection belongs to tenant {:?}", args.dev_tenant);
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("shutting down: closing sockets, running $disconnect, flushing data");
    stack.shutdown().await;
    Ok(())
}
