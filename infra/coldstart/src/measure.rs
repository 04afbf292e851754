//! Starts one function binary per run, times it to its first response and reads its peak RSS.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::runtime_api::{Answer, RuntimeApi};

pub struct Function {
    pub binary: &'static str,
    pub event: String,
}

pub struct Summary {
    pub binary: &'static str,
    pub runs: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub peak_rss_mb: f64,
}

impl Summary {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "function": self.binary, "runs": self.runs, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "min_ms": self.min_ms, "max_ms": self.max_ms, "peak_rss_mb": self.peak_rss_mb,
        })
        .to_string()
    }
}

pub async fn measure(
    function: &Function,
    binary: &Path,
    env: &[(String, String)],
    runs: usize,
    runtime: &RuntimeApi,
    answers: &mut mpsc::UnboundedReceiver<Answer>,
) -> Result<Summary, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(runs);
    let mut peak_rss_kb = 0u64;
    for run in 0..runs {
        let request_id = format!("{}-{run}", function.binary);
        runtime.queue(&request_id, &function.event);
        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_NAME", function.binary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let answer = tokio::time::timeout(Duration::from_secs(10), answers.recv())
            .await
            .map_err(|_| format!("{} did not answer within 10 s", function.binary))?
            .ok_or("the runtime API stopped")?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !answer.ok || answer.id != request_id {
            return Err(format!("{} failed on {}: {}", function.binary, answer.id, answer.body).into());
        }
        peak_rss_kb = peak_rss_kb.max(child.id().and_then(peak_rss_of).unwrap_or(0));
        child.kill().await?;
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    Ok(Summary {
        binary: function.binary,
        runs,
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        peak_rss_mb: peak_rss_kb as f64 / 1024.0,
    })
}

/// `VmHWM` of a live process, in kB (Linux).
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
