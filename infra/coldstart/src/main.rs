//! Cold init of every function binary: each run starts the release binary as Lambda would
//! (Runtime API in `AWS_LAMBDA_RUNTIME_API`, SDK clients built in `main`), hands it one real
//! event, and times process start → response posted; peak RSS is read before it is stopped.
//!
//! `cargo build --release --workspace --bins && cargo run --release -p statecast-coldstart -- --runs 30`

mod measure;
mod runtime_api;

use std::path::PathBuf;

use clap::Parser;
use statecast::dynamo::{create_tables, TableNames};
use statecast_local::engine::{loopback_sdk_config, Engine};

use measure::{measure, Function, Summary};

#[derive(Parser, Debug)]
struct Args {
    /// Starts per function.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Print one JSON object per function instead of a table.
    #[arg(long)]
    json: bool,
}

const JWT_SECRET: &str = "coldstart-benchmark-secret-32-bytes-long";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let engine = Engine::embedded(None).await?;
    let tables = TableNames::with_prefix("coldstart-");
    create_tables(
        &aws_sdk_dynamodb::Client::new(&loopback_sdk_config(&engine.endpoint).await),
        &tables,
    )
    .await?;
    let (runtime_addr, runtime, answers) = runtime_api::serve().await?;
    let env = common_env(&engine.endpoint, &tables, &runtime_addr);
    let mut answers = answers;
    let mut results = Vec::new();
    for function in functions() {
        let binary = args.bin_dir.join(function.binary);
        if !binary.exists() {
            return Err(format!(
                "{} is missing: build with `cargo build --release --workspace --bins`",
                binary.display()
            )
            .into());
        }
        let summary = measure(&function, &binary, &env, args.runs, &runtime, &mut answers).await?;
        results.push(summary);
    }
    print(&results, args.json);
    engine.stop().await;
    Ok(())
}

fn common_env(endpoint: &str, tables: &TableNames, runtime: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("CONNECTIONS_TABLE", &tables.connections),
        ("SUBSCRIPTIONS_TABLE", &tables.subscriptions),
        ("ACTORS_TABLE", &tables.actors),
        ("WORKFLOWS_TABLE", &tables.workflows),
        ("CALLS_TABLE", &tables.calls),
        ("DEFAULT_TENANT", "dev"),
        ("CONNECTIONS_ENDPOINT", "http://127.0.0.1:9/bench"),
        ("JWT_SECRET", JWT_SECRET),
        ("TODO_HOOK_SECRET", "coldstart-hook-secret"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn fixture(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn functions() -> Vec<Function> {
    vec![
        Function {
            binary: "statecast-connect",
            event: fixture("tests/fixtures/ws-connect.json"),
        },
        Function {
            binary: "statecast-default",
            event: fixture("tests/fixtures/ws-message.json"),
        },
        Function {
            binary: "statecast-disconnect",
            event: fixture("tests/fixtures/ws-disconnect.json"),
        },
        Function {
            binary: "statecast-fanout",
            event: fixture("tests/fixtures/stream-modify.json"),
        },
        Function {
            binary: "statecast-workflow",
            // The timer schedule's event: one Query of the due-time index.
            event: r#"{"version":"0","id":"cold","detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#
                .to_owned(),
        },
        Function {
            binary: "statecast-trigger",
            // A webhook whose signature is stale: verified and refused (401), nothing written.
            event: fixture("tests/fixtures/http-webhook.json"),
        },
        Function {
            binary: "statecast-authorizer",
            event: fixture("functions/authorizer/tests/fixtures/authorizer-connect.json"),
        },
    ]
}

fn print(results: &[Summary], json: bool) {
    if json {
        for r in results {
            println!("{}", r.to_json());
        }
        return;
    }
    println!("| function | runs | init→first response p50 | p90 | min | max | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for r in results {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MB |",
            r.binary, r.runs, r.p50_ms, r.p90_ms, r.min_ms, r.max_ms, r.peak_rss_mb
        );
    }
}
