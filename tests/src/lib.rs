//! Test harness: an embedded DynamoDB engine (dynoxide) on a loopback port, the real AWS SDK
//! clients pointed at it with static test credentials, the platform's tables, services wired
//! to them, and a reader that turns the actors stream into Lambda `DynamoDbEvent` records.
//!
//! Set `STATECAST_TEST_DYNAMODB_ENDPOINT` to run the same tests against another
//! DynamoDB-compatible endpoint (e.g. DynamoDB Local); each harness uses its own table prefix.

pub mod fixtures;
pub mod http;
pub mod local;
pub mod pages;
pub mod parts;
pub mod presence_view;
pub mod replica;
pub mod request_log;
pub mod stream_reader;
pub mod subscribers;
pub mod workflow_rig;
pub mod ws_client;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::SdkConfig;
use statecast::app::application;
use statecast::application::{Application, Services, Stores};
use statecast::dynamo::{create_tables, DynamoStore, TableNames};
use statecast::ids::ConnectionId;
use statecast::ports::{ConnectionSender, SubscriptionStore};
use statecast::service::{ConnectRequest, ConnectService, DisconnectService, FanoutService, MessageService, Settings};
use statecast::testing::RecordingSender;
use statecast::workflow::WorkflowSettings;
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
    /// What the services are built with (a test may change it before building them).
    pub settings: Settings,
    /// The application served (the shipped one unless started with another).
    pub app: Application,
    _engine: Engine,
}

impl Harness {
    /// Starts dynoxide on `127.0.0.1:0` (or uses [`ENDPOINT_VAR`]) and creates the tables;
    /// the services serve the shipped application.
    pub async fn start() -> Harness {
        Self::start_with(application().expect("the shipped application is valid")).await
    }

    /// [`Harness::start`] serving `app`.
    pub async fn start_with(app: Application) -> Harness {
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
            settings,
            app,
            _engine: engine,
        }
    }

    /// The application's services on this harness' tables, with the current settings.
    pub fn services(&self) -> Services {
        self.services_with(self.app.clone(), self.settings.clone(), WorkflowSettings::default())
    }

    /// The services of `app` (with `settings`) on this harness' tables.
    pub fn services_with(&self, app: Application, settings: Settings, workflow_settings: WorkflowSettings) -> Services {
        Services::new(app, Stores::all(self.store.clone()), settings, workflow_settings)
    }

    /// Registers connection `id` through `$connect`'s service (no tenant: the dev tenant).
    pub async fn connect(&self, id: &str, tenant: Option<&str>) -> ConnectionId {
        let connection_id = connection(id);
        let request = ConnectRequest {
            connection_id: connection_id.clone(),
            tenant: tenant.map(str::to_owned),
            principal: None,
            connected_at: statecast::records::now_millis(),
        };
        self.connect_service().connect(request).await.expect("connect");
        connection_id
    }

    pub fn connect_service(&self) -> ConnectService {
        self.services().connect()
    }

    pub fn disconnect_service(&self) -> DisconnectService {
        self.services().disconnect()
    }

    pub fn message_service(&self) -> MessageService {
        self.services().message()
    }

    /// A fan-out service posting through `sender`, reading subscribers from `subscriptions`.
    pub fn fanout_service_with(
        &self,
        subscriptions: Arc<dyn SubscriptionStore>,
        sender: Arc<dyn ConnectionSender>,
    ) -> FanoutService {
        let stores = Stores {
            subscriptions,
            ..Stores::all(self.store.clone())
        };
        Services::new(
            self.app.clone(),
            stores,
            self.settings.clone(),
            WorkflowSettings::default(),
        )
        .fanout(sender)
    }

    pub fn fanout_service(&self, sender: Arc<RecordingSender>) -> FanoutService {
        self.services().fanout(sender)
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

/// A connection id (panics on an invalid one).
pub fn connection(id: &str) -> ConnectionId {
    ConnectionId::new(id).expect("connection id")
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
