//! The two things a run measures — the raw ceiling and ours (local mode, in-process or at a
//! URL) — each started, driven and stopped in turn.

use statecast_local::{LocalOptions, LocalStack};

use crate::ceiling::Ceiling;
use crate::driver::{drive, DriverOptions};
use crate::report::Report;
use crate::rss;
use crate::LoadError;

/// What to drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-memory broadcast server in [`crate::ceiling`], started in-process.
    Ceiling,
    /// Statecast: local mode started in-process, or an already-running stack at `url`.
    Ours { url: Option<String> },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Ceiling => "ceiling",
            Target::Ours { .. } => "ours",
        }
    }
}

/// Starts `target` (unless it runs elsewhere), drives it and stops it. The report's peak RSS
/// is this process's while the target ran; `None` for a stack at a URL (only the clients ran here).
pub async fn run(target: &Target, options: &DriverOptions) -> Result<Report, LoadError> {
    rss::reset_peak();
    let measurement = match target {
        Target::Ceiling => {
            let ceiling = Ceiling::start().await.map_err(LoadError::Ceiling)?;
            let measured = drive(&ceiling.ws_url, options).await;
            ceiling.shutdown();
            measured?
        }
        Target::Ours { url: Some(url) } => drive(url, options).await?,
        Target::Ours { url: None } => {
            let mut local = LocalOptions {
                port: 0,
                ..LocalOptions::default()
            };
            // One client sends every broadcast as fast as they are delivered: the run measures
            // delivery, not the per-connection limit (which still counts each one in DynamoDB).
            local.settings.broadcast_rate.max = u32::MAX;
            let stack = LocalStack::start(local).await?;
            let measured = drive(&stack.ws_url, options).await;
            stack.shutdown().await;
            measured?
        }
    };
    let in_process = !matches!(target, Target::Ours { url: Some(_) });
    let peak_rss_mb = rss::peak_mb().filter(|_| in_process);
    Ok(Report::new(target.name(), options, &measurement, peak_rss_mb))
}
