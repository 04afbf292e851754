//! `cargo run -p statecast-local`: the whole stack on this machine, printing the `ws://` URL.
//! `cargo run -p statecast-local -- token ...` mints a dev token for `--auth jwt`;
//! `... -- sign --trigger NAME --body FILE` prints the header that signs a webhook body.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use statecast::metrics::Metrics;
use statecast::service::Settings;
use statecast_authorizer::AuthConfig;
use statecast_local::engine::StreamRetention;
use statecast_local::gateway::{ConnectionsTransport, FaultPlan, LatencyRange, Limits};
use statecast_local::logging::{self, LogFormat};
use statecast_local::{LocalOptions, LocalStack};

/// Runs the WebSocket API, @connections, DynamoDB with Streams and the fan-out locally.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// More output: -v what the stack does, -vv debug, -vvv everything (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// `text` for people; `json` for the JSON lines the Lambda runtime prints.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Print each function's metrics as CloudWatch EMF lines on stdout, as on Lambda.
    #[arg(long)]
    metrics: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print an HS256 token for `--auth jwt --jwt-secret ...` (connect with `?token=...`).
    Token(TokenArgs),
    /// Print the header that authenticates FILE as a delivery of webhook trigger NAME (with the
    /// secret local mode uses: its variable from the environment, else the dev secret).
    Sign(SignArgs),
}

#[derive(Args, Debug)]
struct SignArgs {
    #[arg(long)]
    trigger: String,
    /// The exact body to send (curl --data-binary @FILE).
    #[arg(long)]
    body: PathBuf,
    /// Unix seconds to sign at (default: now).
    #[arg(long)]
    at: Option<i64>,
}

#[derive(Args, Debug)]
struct RunArgs {
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
    /// Tenant of every connection while auth is off.
    #[arg(long, default_value = "dev")]
    dev_tenant: String,
    /// Seconds between TTL sweeps of the embedded engine.
    #[arg(long, default_value_t = 60)]
    ttl_sweep_secs: u64,
    /// How the fan-out reaches `@connections`: `in-process` (straight to the sockets) or `http`
    /// (the AWS SDK's PostToConnection against this gateway, as deployed).
    #[arg(long, default_value = "in-process")]
    connections_transport: ConnectionsTransport,
    /// Bytes of frames that may wait for one client's socket; a client that reads slower is
    /// closed with 1008 and posts to it answer 410.
    #[arg(long, default_value_t = Limits::default().max_queued_bytes)]
    max_queued_bytes: usize,
    /// Frames of one connection handled at once (1: one at a time). API Gateway may invoke
    /// `$default` concurrently for one connection; more than 1 does too, replies in any order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    concurrent_frames: u16,
    /// Seconds the embedded engine keeps stream records (DynamoDB Streams: 24 hours).
    #[arg(long, default_value_t = 24 * 60 * 60)]
    stream_retention_secs: u64,
    /// Keep stream records the event source mappings have processed until they expire (by
    /// default they are deleted once processed, so a long session stays small).
    #[arg(long)]
    keep_processed_stream_records: bool,
    /// Do not serve the inspector page at /_inspector (nor record what it shows).
    #[arg(long)]
    no_inspector: bool,
    /// Port of the trigger endpoint: webhooks, local queues, schedules (default: --port + 1;
    /// 0 picks a free one).
    #[arg(long)]
    trigger_port: Option<u16>,
    /// Rate schedules tick this many times faster than declared (e.g. 60: `rate(1 minute)` every second).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    schedule_speedup: u32,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    faults: FaultArgs,
}

/// Faults injected into `@connections` posts, and when actors spread, to see the fan-out under
/// API Gateway's limits.
#[derive(Args, Debug)]
struct FaultArgs {
    /// Each post waits a latency drawn from this range, e.g. `5ms..40ms`.
    #[arg(long)]
    connections_latency: Option<LatencyRange>,
    /// Posts per second accepted; the rest are answered 429 `LimitExceededException`.
    #[arg(long)]
    connections_throughput: Option<u32>,
    /// Share of posts answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    connections_error_rate: f64,
    /// Share of posts answered 410, dropping the connection without its `$disconnect` (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    connections_gone_rate: f64,
    /// Seed of the injected faults (the same seed, the same faults).
    #[arg(long, default_value_t = 1)]
    faults_seed: u64,
    /// Subscribers in an actor's one partition past which its subscriptions are spread and its
    /// changes go out in pages (`SUBSCRIPTION_SPREAD_AT`).
    #[arg(long, default_value_t = Settings::default().spread_at)]
    subscription_spread_at: usize,
    /// Partitions (pages) a spread actor uses (`SUBSCRIPTION_SHARDS`).
    #[arg(long, default_value_t = Settings::default().spread_shards, value_parser = clap::value_parser!(u32).range(2..=1000))]
    subscription_shards: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    None,
    Jwt,
}

#[derive(Args, Debug)]
struct AuthArgs {
    /// `jwt` runs the $connect authorizer on every upgrade, as the deployed stack does.
    #[arg(long, value_enum, default_value = "none")]
    auth: AuthMode,
    /// HS256 secret (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// JWKS URL for RS256/ES256 tokens.
    #[arg(long, env = "JWKS_URL")]
    jwks_url: Option<String>,
    #[arg(long, env = "JWT_ISSUER")]
    jwt_issuer: Option<String>,
    #[arg(long, env = "JWT_AUDIENCE")]
    jwt_audience: Option<String>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long, default_value = "dev")]
    tenant: String,
    #[arg(long, default_value = "developer")]
    sub: String,
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    audience: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    if let Some(Command::Token(t)) = cli.command {
        let ttl = Duration::from_secs(t.ttl_secs);
        let token = statecast_authorizer::mint_hs256(
            &t.secret,
            &t.tenant,
            &t.sub,
            ttl,
            t.issuer.as_deref(),
            t.audience.as_deref(),
        )?;
        println!("{token}");
        return Ok(());
    }
    if let Some(Command::Sign(args)) = cli.command {
        println!("{}", sign(&args)?);
        return Ok(());
    }
    logging::init(cli.log_format, cli.verbose)?;
    let started = Instant::now();
    let (mut options, auth_line) = options(cli.run)?;
    if cli.metrics {
        options.settings.metrics = Metrics::stdout("statecast-local");
    }
    let stack = LocalStack::start(options).await?;
    println!("statecast local stack ready in {} ms", started.elapsed().as_millis());
    println!("  Page:         {}", stack.page_url);
    if let Some(inspector) = &stack.inspector_url {
        println!("  Inspector:    {inspector}");
    }
    println!("  WebSocket:    {}", stack.ws_url);
    println!("  @connections: {}", stack.connections_url);
    println!("  DynamoDB:     {}", stack.dynamodb_endpoint);
    println!(
        "  Triggers:     {}/hooks/{{trigger}}  (queues: /queues/{{queue}})",
        stack.triggers_url
    );
    println!(
        "  webhook secrets: from the environment, else {:?} (`sign --trigger NAME --body FILE` prints a header)",
        statecast_local::DEV_SECRET
    );
    println!("  {auth_line}");
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("shutting down: closing sockets, running $disconnect, flushing data");
    stack.shutdown().await;
    Ok(())
}

/// The stack's options and the line that says how connections are authenticated.
fn options(args: RunArgs) -> Result<(LocalOptions, String), Box<dyn std::error::Error>> {
    let (auth, auth_line) = match args.auth.auth {
        AuthMode::None => (
            None,
            format!("auth: off — every connection belongs to tenant {:?}", args.dev_tenant),
        ),
        AuthMode::Jwt => {
            // The same names and validation as the deployed authorizer's environment.
            let a = &args.auth;
            let config = AuthConfig::from_lookup(|name| match name {
                "JWT_SECRET" => a.jwt_secret.clone(),
                "JWKS_URL" => a.jwks_url.clone(),
                "JWT_ISSUER" => a.jwt_issuer.clone(),
                "JWT_AUDIENCE" => a.jwt_audience.clone(),
                _ => None,
            })?;
            (
                Some(config),
                "auth: jwt — connect with ?token=<jwt> (mint one with the `token` command)".to_owned(),
            )
        }
    };
    let options = LocalOptions {
        host: args.host,
        port: args.port,
        stage: args.stage,
        data: args.data,
        dynamodb_endpoint: args.dynamodb_endpoint,
        table_prefix: args.table_prefix,
        dev_tenant: Some(args.dev_tenant),
        ttl_sweep_interval: Duration::from_secs(args.ttl_sweep_secs.max(1)),
        connections_transport: args.connections_transport,
        settings: Settings {
            spread_at: args.faults.subscription_spread_at,
            spread_shards: args.faults.subscription_shards,
            ..Settings::default()
        },
        connection_faults: FaultPlan {
            latency: args.faults.connections_latency,
            throughput: args.faults.connections_throughput,
            error_rate: args.faults.connections_error_rate,
            gone_rate: args.faults.connections_gone_rate,
            seed: args.faults.faults_seed,
        },
        limits: Limits {
            max_queued_bytes: args.max_queued_bytes,
            max_concurrent_frames: usize::from(args.concurrent_frames),
            ..Limits::default()
        },
        stream_retention: StreamRetention {
            max_age: Duration::from_secs(args.stream_retention_secs),
            trim_processed: !args.keep_processed_stream_records,
            ..StreamRetention::default()
        },
        auth,
        inspector: !args.no_inspector,
        trigger_port: args.trigger_port,
        schedule_speedup: args.schedule_speedup,
        ..LocalOptions::default()
    };
    Ok((options, auth_line))
}

/// The signature (or token) header for `args.body` as a delivery of `args.trigger`.
fn sign(args: &SignArgs) -> Result<String, Box<dyn std::error::Error>> {
    use statecast::trigger::{Secret, Verification};
    let app = statecast::app::application()?;
    let trigger = app
        .trigger_list()
        .iter()
        .find(|t| t.name == args.trigger)
        .ok_or_else(|| format!("no trigger {:?}", args.trigger))?;
    let hook = trigger
        .webhook_settings()
        .ok_or_else(|| format!("trigger {:?} is not a webhook", args.trigger))?;
    let secret = |secret: &Secret| match secret {
        Secret::Value(value) => value.clone(),
        Secret::Env(name) => statecast_local::local_secret(&Default::default(), name),
    };
    let body = std::fs::read(&args.body)?;
    Ok(match &hook.verification {
        Verification::Hmac { secret: s, header, .. } => {
            let at = args.at.unwrap_or_else(|| statecast::records::now_millis() / 1000);
            let value = statecast::trigger::signature::header_value(secret(s).as_bytes(), at, &body);
            format!("{header}: {value}")
        }
        Verification::Bearer { token } => format!("Authorization: Bearer {}", secret(token)),
        Verification::None => return Err(format!("trigger {:?} takes unsigned requests", args.trigger).into()),
    })
}
