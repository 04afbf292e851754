//! Services: what the Lambda handlers (and the local gateway) call. Each takes only the ports
//! it needs, so every function gets the least it must be allowed to touch.

mod call;
mod connect;
mod disconnect;
mod external;
mod fanout;
mod frames;
mod idempotent;
mod key_lock;
mod message;
mod subscribe;

use std::time::Duration;

use crate::changelog::ChangeLogSettings;
use crate::ids::TenantId;

pub use connect::{ConnectRequest, ConnectService};
pub use disconnect::DisconnectService;
pub use external::Once;
pub use fanout::{FanoutOutcome, FanoutService};
pub use message::MessageService;

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
        }
    }
}
