//! The mapping's settings ([`EsmConfig`], [`StartingPosition`]), their defaults and the retry back-off.

use std::sync::Arc;
use std::time::Duration;

use statecast::metrics::Metrics;

use super::positions::PositionStore;

/// Longest back-off between retries of a failing batch or SDK call.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Where a mapping starts reading shards that exist when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

/// The mapping's settings; [`Default`] mirrors `template.yaml` (FanoutFunction → ActorChanges).
#[derive(Debug, Clone)]
pub struct EsmConfig {
    pub batch_size: usize,
    /// How long to keep gathering records after the first one before invoking (0: at once).
    pub batching_window: Duration,
    pub max_retry_attempts: u32,
    /// `Duration::MAX` disables the check.
    pub max_record_age: Duration,
    pub bisect_on_error: bool,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`; off, a response's failures are ignored.
    pub report_batch_item_failures: bool,
    pub starting_position: StartingPosition,
    /// Sleep between polls of an idle stream.
    pub poll_interval: Duration,
    /// First retry back-off; doubles per attempt up to 2 s.
    pub retry_base_delay: Duration,
    pub shard_refresh_interval: Duration,
    /// The function's `Timeout`.
    pub function_timeout: Duration,
    /// Keeps the position on each shard across restarts, as AWS does for a mapping; without
    /// one a restarted mapping starts again at `starting_position`.
    pub positions: Option<Arc<dyn PositionStore>>,
    /// Counts the records sent to the on-failure sink (`OnFailureRecords`); off by default.
    pub metrics: Metrics,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            batch_size: 100,
            batching_window: Duration::ZERO,
            max_retry_attempts: 10,
            max_record_age: Duration::from_secs(3600),
            bisect_on_error: true,
            report_batch_item_failures: true,
            starting_position: StartingPosition::TrimHorizon,
            poll_interval: Duration::from_millis(10),
            retry_base_delay: Duration::from_millis(50),
            shard_refresh_interval: Duration::from_secs(1),
            function_timeout: Duration::from_secs(60),
            positions: None,
            metrics: Metrics::off(),
        }
    }
}

impl EsmConfig {
    /// Back-off before retry number `attempt` (0-based): `retry_base_delay × 2^attempt`, capped
    /// at 2 s (or at `retry_base_delay` when that is larger).
    pub fn retry_backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.retry_base_delay
            .saturating_mul(factor)
            .min(MAX_RETRY_DELAY.max(self.retry_base_delay))
    }
}
