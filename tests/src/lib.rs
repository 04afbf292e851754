//! Test harness: an embedded DynamoDB engine (dynoxide) on a loopback port, the real AWS SDK
//! clients pointed at it with static test credentials, the platform's tables, services wired
//! to them, and a reader that turns the actors stream into Lambda `DynamoDbEvent` records.
//!
//! Set `STATECAST_TEST_DYNAMODB_ENDPOINT` to run the same tests against another
//! DynamoDB-compatible endpoint (e.g. DynamoDB Local); each harness uses its own table prefix.

pub mod fixtures;
pub mod replica;
pub mod request_log;
pub mod stream_reader;
pub mod workflow_rig;
pub mod ws_client;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::SdkConfig;
use statecast::actor::ActorRegistry;
use statecast::dynamo::{create_tables, DynamoStore, TableNames};
use statecast::ports::{ConnectionSender, SubscriptionStore};
use statecast::service::{ConnectService, DisconnectService, FanoutService, MessageService, Settings};
use statecast::testing::RecordingSender;
use statecast_local::engine::Engine;

pub use stream_reader::StreamReader;

/// Environment variable naming an external DynamoDB-compatible endpoint to test against.
pub const ENDPOINT_VAR: &str = "STATECAST_TEST_DYNAMODB_ENDPOINT";

/// Tenant of connections that carry no authorizer context in tests.
pub const DEV_TENANT: &str = "dev";

static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

pub use statecast_local::engine::loopback_sdk_config;

/// A table prefix no other harness in this process (or run) uses.
pub fn unique_prefix() -> String {
    format!(
        "t{}-{}-",
        std::process::id(),
        NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
    )
}

/// The external endpoint from [`ENDPOINT_VAR`], if one is set.
pub fn external_endpoint() -> Option<String> {
    std::env::var(ENDPOINT_VAR).ok().filter(|e| !e.is_empty())
}

pub struct Harness {
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
    pub store: Arc<DynamoStore>,
    pub registry: Arc<ActorRegistry>,
    pub settings: Settings,
    _engine: Engine,
}

impl Harness {
    /// Starts dynoxide on `127.0.0.1:0` (or uses [`ENDPOINT_VAR`]) and creates the tables.
    pub async fn start() -> Harness {
        init_tracing();
        let engine = match external_endpoint() {
            Some(endpoint) => Engine::external(endpoint),
            None => Engine::embedded(None).await.expect("embedded engine starts"),
        };
        let endpoint = engine.endpoint.clone();
        let sdk = loopback_sdk_config(&endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let tables = TableNames::with_prefix(&unique_prefix());
        create_tables(&dynamo, &tables).await.expect("tables are created");
        let store = Arc::new(DynamoStore::new(dynamo.clone(), tables.clone()));
        let settings = Settings {
            default_tenant: Some(statecast::ids::TenantId::new(DEV_TENANT).expect("tenant")),
            ..Settings::default()
        };
        Harness {
            endpoint,
            sdk,
            dynamo,
            tables,
            store,
            registry: Arc::new(ActorRegistry::with_examples()),
            settings,
            _engine: engine,
        }
    }

    pub fn connect_service(&self) -> ConnectService {
        ConnectService::new(self.store.clone(), self.settings.clone())
    }

    pub fn disconnect_service(&self) -> DisconnectService {
        DisconnectService::new(self.store.clone(), self.store.clone())
    }

    pub fn message_service(&self) -> MessageService {
        MessageService::new(
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            self.registry.clone(),
            self.settings.clone(),
        )
    }

    /// A fan-out service posting through `sender`, reading subscribers from `subscriptions`.
    pub fn fanout_service_with(
        &self,
        subscriptions: Arc<dyn SubscriptionStore>,
        sender: Arc<dyn ConnectionSender>,
    ) -> FanoutService {
        FanoutService::new(
            subscriptions,
            sender,
            self.disconnect_service(),
            self.registry.clone(),
            self.settings.clone(),
        )
    }

    pub fn fanout_service(&self, sender: Arc<RecordingSender>) -> FanoutService {
        self.fanout_service_with(self.store.clone(), sender)
    }

    /// A reader of the workflows table's stream, positioned at its start.
    pub async fn workflow_stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.dynamo, &self.tables.workflows).await
    }

    /// A reader of the actors table's stream, positioned at its start.
    pub async fn actor_stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.dynamo, &self.tables.actors).await
    }
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=statecast=debug`).
pub fn init_tracing() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}
