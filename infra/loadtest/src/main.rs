//! `statecast-loadtest --subscribers N --calls M [--message call|broadcast] [--target ours|ceiling|both] [--url ws://...] [--json]`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use statecast_loadtest::{report, target, DriverOptions, MessageKind, Report, Target};
use tokio_tungstenite::tungstenite::http::Uri;

/// Fan-out load: N subscribers on one counter, M sequential increments (or broadcasts), all-delivered latency.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// WebSocket clients, all subscribed to one fresh `counter/...` actor.
    #[arg(long)]
    subscribers: usize,
    /// Messages (`increment` calls or broadcasts), sent one after another by the first client.
    #[arg(long)]
    calls: u64,
    /// `call`: `increment`, delivered as the counter's change; `broadcast`: a "tick" posted
    /// to every subscriber (the sender too). The in-process stack lifts the per-connection
    /// broadcast rate limit (still counted); a stack at `--url` keeps its own.
    #[arg(long, value_enum, default_value = "call")]
    message: MessageKind,
    /// `both` runs the raw ceiling first, then ours, and prints ours / ceiling.
    #[arg(long, value_enum, default_value = "both")]
    target: Which,
    /// Drive an already-running stack (loopback only) as `ours` instead of starting local mode.
    #[arg(long, value_parser = loopback_url)]
    url: Option<String>,
    /// One JSON object per target on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Fail if the whole run takes longer than this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Clients connecting at once (1 measures each connect unloaded).
    #[arg(long, default_value_t = 1)]
    connect_concurrency: usize,
    /// Seconds one call may take to reach every client.
    #[arg(long, default_value_t = 10)]
    call_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Ours,
    Ceiling,
    Both,
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    let options = DriverOptions {
        subscribers: cli.subscribers,
        calls: cli.calls,
        message: cli.message,
        connect_concurrency: cli.connect_concurrency,
        call_timeout: Duration::from_secs(cli.call_timeout),
        ..DriverOptions::default()
    };
    let ours = Target::Ours { url: cli.url.clone() };
    let targets = match cli.target {
        Which::Ours => vec![ours],
        Which::Ceiling => vec![Target::Ceiling],
        Which::Both => vec![Target::Ceiling, ours],
    };
    let timeout = Duration::from_secs(cli.timeout);
    match tokio::time::timeout(timeout, run(&targets, &options, cli.json)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(_) => {
            eprintln!("error: the run did not finish within {timeout:?} (--timeout)");
            ExitCode::FAILURE
        }
    }
}

/// Runs each target in turn and prints the results; false if any failed.
async fn run(targets: &[Target], options: &DriverOptions, json: bool) -> bool {
    let mut reports: Vec<Report> = Vec::new();
    let mut ok = true;
    for t in targets {
        match target::run(t, options).await {
            Ok(r) => {
                if json {
                    println!("{}", r.json());
                }
                for message in &r.error_messages {
                    eprintln!("{}: {message}", r.target);
                }
                if r.errors > 0 {
                    eprintln!("error: {} failed with {} errors (first ones above)", r.target, r.errors);
                    ok = false;
                }
                reports.push(r);
            }
            Err(e) => {
                eprintln!("error: {} could not be run: {e}", t.name());
                ok = false;
            }
        }
    }
    let table = report::table(&reports);
    if json {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    ok
}

/// A `ws://` URL whose host is loopback: this tool never loads anything beyond this machine.
fn loopback_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("ws") {
        return Err("expected a ws:// URL".into());
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(url.to_owned())
    } else {
        Err(format!("{host} is not a loopback address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--url` takes loopback ws:// URLs only.
    #[test]
    fn only_loopback_urls_are_accepted() {
        for ok in [
            "ws://127.0.0.1:8787/local",
            "ws://localhost:8787/local",
            "ws://[::1]:8787/local",
        ] {
            assert_eq!(loopback_url(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "ws://10.0.0.5:8787/local",
            "ws://example.com/local",
            "http://127.0.0.1:8787/local",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
    }
}
