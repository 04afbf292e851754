//! What a trigger declares: its name, the tenant it acts for, where its events come from
//! (webhook, queue, schedule), how a webhook is verified, and what it calls or starts.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// The signature header of HMAC-verified webhooks unless a trigger names another.
pub const DEFAULT_SIGNATURE_HEADER: &str = "Statecast-Signature";
/// How far a signed timestamp may be from the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// Largest webhook body accepted unless a trigger says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// One way in from the outside world.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    /// Every call or start runs in this tenant; a request never chooses it.
    pub tenant: Option<String>,
    pub source: Source,
    pub target: Option<Target>,
}

/// Where a trigger's events come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `POST /hooks/{name}`.
    Webhook(Webhook),
    /// Messages of an SQS queue (its logical name, see `TRIGGER_QUEUES`).
    Queue { queue: String },
    /// An EventBridge schedule: `rate(5 minutes)` or `cron(0 3 * * ? *)`.
    Schedule { expression: String },
}

/// A webhook's checks.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub verification: Verification,
    /// The header carrying the sender's delivery id; a repeated id is a no-op.
    pub delivery_header: Option<String>,
    pub max_body_bytes: usize,
}

/// How a webhook proves where it comes from.
#[derive(Debug, Clone)]
pub enum Verification {
    /// `header: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (several `v1` allowed, for
    /// secret rotation); `t` within `tolerance` of now.
    Hmac {
        secret: Secret,
        header: String,
        tolerance: Duration,
    },
    /// `Authorization: Bearer <token>`.
    Bearer { token: Secret },
    /// No check at all, declared explicitly.
    None,
}

impl Verification {
    /// HMAC-SHA256 in the `Statecast-Signature` header with a 5 minute window.
    pub fn hmac(secret: Secret) -> Self {
        Verification::Hmac {
            secret,
            header: DEFAULT_SIGNATURE_HEADER.to_owned(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    pub fn bearer(token: Secret) -> Self {
        Verification::Bearer { token }
    }
}

/// A secret, named by the environment variable that holds it (deployments) or given inline
/// (tests). Never printed.
#[derive(Clone)]
pub enum Secret {
    Env(String),
    Value(String),
}

impl Secret {
    pub fn env(name: impl Into<String>) -> Self {
        Secret::Env(name.into())
    }

    pub fn value(value: impl Into<String>) -> Self {
        Secret::Value(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret::Env({name:?})"),
            Secret::Value(_) => f.write_str("Secret::Value(<redacted>)"),
        }
    }
}

/// What an event does. `id`, `args` and `input` are templates: every `{"$ref": "body.x"}`
/// is replaced by what the path names in the event (see [`super::template`]).
#[derive(Debug, Clone)]
pub enum Target {
    /// Calls `method` on the actor `actor_type/<id>`, `id` resolving to a string (or number).
    Call {
        actor_type: String,
        id: Value,
        method: String,
        args: Value,
    },
    /// Starts `workflow` with the input the template resolves to.
    StartWorkflow { workflow: String, input: Value },
}

impl Trigger {
    fn new(name: impl Into<String>, source: Source) -> Self {
        Self {
            name: name.into(),
            tenant: None,
            source,
            target: None,
        }
    }

    /// `POST /hooks/{name}`, verified as `verification` says.
    pub fn webhook(name: impl Into<String>, verification: Verification) -> Self {
        Self::new(
            name,
            Source::Webhook(Webhook {
                verification,
                delivery_header: None,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            }),
        )
    }

    /// The messages of `queue`.
    pub fn queue(name: impl Into<String>, queue: impl Into<String>) -> Self {
        Self::new(name, Source::Queue { queue: queue.into() })
    }

    /// Every tick of `expression` (`rate(..)` or `cron(..)`).
    pub fn schedule(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Self::new(
            name,
            Source::Schedule {
                expression: expression.into(),
            },
        )
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// A webhook's delivery id header (ignored for other sources; validation says so).
    pub fn delivery_header(mut self, header: impl Into<String>) -> Self {
        if let Source::Webhook(hook) = &mut self.source {
            hook.delivery_header = Some(header.into());
        }
        self
    }

    /// A webhook's body limit.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        if let Source::Webhook(hook) = &mut self.source {
            hook.max_body_bytes = limit;
        }
        self
    }

    /// Calls `method` of the actor at `address` (`type/id`) with `args`.
    pub fn call(self, address: &str, method: impl Into<String>, args: Value) -> Self {
        let (actor_type, id) = match address.split_once('/') {
            Some((actor_type, id)) => (actor_type, Value::String(id.to_owned())),
            None => (address, Value::Null),
        };
        self.call_keyed(actor_type, id, method, args)
    }

    /// Calls `method` of the `actor_type` actor whose id is `id` (a string or a template,
    /// e.g. `{"$ref": "body.list"}`) with `args`.
    pub fn call_keyed(
        mut self,
        actor_type: impl Into<String>,
        id: Value,
        method: impl Into<String>,
        args: Value,
    ) -> Self {
        self.target = Some(Target::Call {
            actor_type: actor_type.into(),
            id,
            method: method.into(),
            args,
        });
        self
    }

    /// Starts `workflow` with `input`.
    pub fn start_workflow(mut self, workflow: impl Into<String>, input: Value) -> Self {
        self.target = Some(Target::StartWorkflow {
            workflow: workflow.into(),
            input,
        });
        self
    }

    pub fn webhook_settings(&self) -> Option<&Webhook> {
        match &self.source {
            Source::Webhook(hook) => Some(hook),
            _ => None,
        }
    }
}
