//! Services: what the Lambda handlers (and the local gateway) call. Each takes only the ports
//! it needs, so every function gets the least it must be allowed to touch.

mod broadcast;
mod call;
mod connect;
mod disconnect;
mod external;
mod fanout;
mod frames;
mod idempotent;
mod key_lock;
mod message;
pub mod pages;
mod posting;
mod presence;
mod rooms;
mod subscribe;

use std::time::Duration;

use crate::changelog::ChangeLogSettings;
use crate::ids::TenantId;
use crate::metrics::Metrics;

pub use connect::{ConnectRequest, ConnectService};
pub use disconnect::DisconnectService;
pub use external::Once;
pub use fanout::{FanoutOutcome, FanoutService};
pub use message::MessageService;
pub use pages::PageTask;
pub use posting::{PostLimits, Posted, Poster};

/// Tunables shared by the services; [`Settings::default`] is what production uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a connection (and its subscriptions) lives before TTL may delete it. API
    /// Gateway closes a connection after 2 h; 10 min of grace cover clock skew.
    pub connection_ttl: Duration,
    /// Tenant for connections whose authorizer context names none; `None` refuses them.
    pub default_tenant: Option<TenantId>,
    /// How long a call keeps retrying version conflicts (with jittered back-off) before the
    /// caller gets `conflict`.
    pub call_retry_budget: Duration,
    /// Largest actor state accepted (JSON bytes); DynamoDB's item limit is 400 KB.
    pub max_state_bytes: usize,
    /// `@connections` posts in flight at once for one change.
    pub send_concurrency: usize,
    /// Actors whose changes are fanned out at once (each actor's own changes stay in order).
    pub actor_concurrency: usize,
    /// The recent changes each actor keeps for resuming subscribers.
    pub change_log: ChangeLogSettings,
    /// How long a call's result stays recorded under its idempotency key.
    pub call_key_retention: Duration,
    /// Send a batch's consecutive changes of one actor as one frame (off: one frame per
    /// change, for comparison).
    pub coalesce: bool,
    /// How many broadcasts and presence changes (joins, updates) one connection may send.
    pub broadcast_rate: RateLimit,
    /// Where the services' metrics go (off unless a function's `main` or local mode sets it).
    pub metrics: Metrics,
    /// Subscribers in an actor's one partition past which the fan-out spreads its later
    /// subscriptions over `spread_shards` partitions.
    pub spread_at: usize,
    /// Partitions a spread actor's subscriptions use (each one a page of its fan-out).
    pub spread_shards: u32,
}

/// At most `max` messages per `window` (fixed windows, counted in DynamoDB so every Lambda
/// instance sees the same count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    /// The window `now_millis` falls in, and how long until the next one starts.
    pub fn window_at(&self, now_millis: i64) -> (i64, u64) {
        let width = self.window.as_millis().clamp(1, i64::MAX as u128) as i64;
        let window = now_millis.div_euclid(width);
        (window, ((window + 1) * width - now_millis) as u64)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_ttl: Duration::from_secs(2 * 3600 + 600),
            default_tenant: None,
            call_retry_budget: Duration::from_secs(3),
            max_state_bytes: 350_000,
            send_concurrency: 32,
            actor_concurrency: 8,
            change_log: ChangeLogSettings::default(),
            call_key_retention: Duration::from_secs(24 * 3600),
            coalesce: true,
            broadcast_rate: RateLimit {
                max: 20,
                window: Duration::from_secs(1),
            },
            spread_at: 1000,
            spread_shards: 32,
            metrics: Metrics::off(),
        }
    }
}
