//! Configuration read from the environment (set by `template.yaml` in AWS, by local mode or
//! tests elsewhere).

use std::time::Duration;

use crate::dynamo::TableNames;
use crate::ids::TenantId;
use crate::service::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {detail}")]
    Invalid { var: &'static str, detail: String },
}

/// Everything a function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub tables: TableNames,
    pub settings: Settings,
    /// `CONNECTIONS_ENDPOINT`: the `@connections` base URL (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub connections_endpoint: Option<String>,
    /// `PAGES_QUEUE_URL`: the FIFO queue a spread actor's fan-out pages go to (unset: the
    /// fan-out posts every shard itself).
    pub pages_queue_url: Option<String>,
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::Missing(name))
}

fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    optional(name)
        .map(|v| {
            v.parse::<T>().map_err(|e| ConfigError::Invalid {
                var: name,
                detail: e.to_string(),
            })
        })
        .transpose()
}

impl Config {
    /// Reads `CONNECTIONS_TABLE`, `SUBSCRIPTIONS_TABLE`, `ACTORS_TABLE`, `WORKFLOWS_TABLE`,
    /// `CALLS_TABLE` (required), and the
    /// optional `CONNECTIONS_ENDPOINT`, `DEFAULT_TENANT`, `CALL_RETRY_BUDGET_MS`,
    /// `MAX_STATE_BYTES`, `SEND_CONCURRENCY`, `CONNECTION_TTL_SECONDS`, `BROADCAST_RATE_MAX`,
    /// `BROADCAST_RATE_WINDOW_MS`, `SUBSCRIPTION_SPREAD_AT`, `SUBSCRIPTION_SHARDS`, `PAGES_QUEUE_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let tables = TableNames {
            connections: var("CONNECTIONS_TABLE")?,
            subscriptions: var("SUBSCRIPTIONS_TABLE")?,
            actors: var("ACTORS_TABLE")?,
            workflows: var("WORKFLOWS_TABLE")?,
            calls: var("CALLS_TABLE")?,
        };
        let mut settings = Settings::default();
        if let Some(t) = optional("DEFAULT_TENANT") {
            settings.default_tenant = Some(TenantId::new(t).map_err(|e| ConfigError::Invalid {
                var: "DEFAULT_TENANT",
                detail: e.to_string(),
            })?);
        }
        if let Some(n) = number("CALL_RETRY_BUDGET_MS")? {
            settings.call_retry_budget = Duration::from_millis(n);
        }
        if let Some(n) = number("MAX_STATE_BYTES")? {
            settings.max_state_bytes = n;
        }
        if let Some(n) = number("SEND_CONCURRENCY")? {
            settings.send_concurrency = n;
        }
        if let Some(n) = number("CONNECTION_TTL_SECONDS")? {
            settings.connection_ttl = Duration::from_secs(n);
        }
        if let Some(n) = number("BROADCAST_RATE_MAX")? {
            settings.broadcast_rate.max = n;
        }
        if let Some(n) = number("BROADCAST_RATE_WINDOW_MS")? {
            settings.broadcast_rate.window = Duration::from_millis(n);
        }
        if let Some(n) = number("SUBSCRIPTION_SPREAD_AT")? {
            settings.spread_at = n;
        }
        if let Some(n) = number("SUBSCRIPTION_SHARDS")? {
            let n: u32 = n;
            if !(2..=1000).contains(&n) {
                return Err(ConfigError::Invalid {
                    var: "SUBSCRIPTION_SHARDS",
                    detail: format!("{n} is not between 2 and 1000"),
                });
            }
            settings.spread_shards = n;
        }
        Ok(Self {
            tables,
            settings,
            connections_endpoint: optional("CONNECTIONS_ENDPOINT"),
            pages_queue_url: optional("PAGES_QUEUE_URL"),
        })
    }

    /// `CONNECTIONS_ENDPOINT`, required by functions that post to clients.
    pub fn require_connections_endpoint(&self) -> Result<&str, ConfigError> {
        self.connections_endpoint
            .as_deref()
            .ok_or(ConfigError::Missing("CONNECTIONS_ENDPOINT"))
    }
}
