//! Test harness: an embedded DynamoDB engine (dynoxide) on a loopback port, the real AWS SDK
//! clients pointed at it with static test credentials, the platform's tables, services wired
//! to them, and a reader that turns the actors stream into Lambda `DynamoDbEvent` records.
//!
//! Set `STATECAST_TEST_DYNAMODB_ENDPOINT` to run the same tests against another
//! DynamoDB-compatible endpoint (e.g. DynamoDB Local); each harness uses its own table prefix.

pub mod fixtures;
pub mod replica;
pub mod stream_reader;
pub mod ws_client;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use statecast::actor::ActorRegistry;
use statecast::dynamo::{create_tables, DynamoStore, TableNames};
use statecast::ports::{ConnectionSender, SubscriptionStore};
use statecast::service::{ConnectService, DisconnectService, FanoutService, MessageService, Settings};
use statecast::testing::RecordingSender;
use tokio::sync::oneshot;

pub use stream_reader::StreamReader;

/// Environment variable naming an external DynamoDB-compatible endpoint to test against.
pub const ENDPOINT_VAR: &str = "STATECAST_TEST_DYNAMODB_ENDPOINT";

/// Tenant of connections that carry no authorizer context in tests.
pub const DEV_TENANT: &str = "dev";

static NEXT_PREFIX: AtomicUsize = AtomicUsize::new(0);

/// SDK configuration for a loopback endpoint: explicit region, endpoint and static
/// credentials, so the default chain never probes the instance metadata service.
pub async fn loopback_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "statecast-tests"))
        .load()
        .await
}

pub struct Harness {
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
    pub store: Arc<DynamoStore>,
    pub registry: Arc<ActorRegistry>,
    pub settings: Settings,
    _engine: Option<oneshot::Sender<()>>,
}

impl Harness {
    /// Starts dynoxide on `127.0.0.1:0` (or uses [`ENDPOINT_VAR`]) and creates the tables.
    pub async fn start() -> Harness {
        let (endpoint, engine) = match std::env::var(ENDPOINT_VAR) {
            Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
            _ => {
                let (endpoint, stop) = start_dynoxide().await;
                (endpoint, Some(stop))
            }
        };
        let sdk = loopback_sdk_config(&endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
        );
        let tables = TableNames::with_prefix(&prefix);
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

    /// A reader of the actors table's stream, positioned at its start.
    pub async fn actor_stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.dynamo, &self.tables.actors).await
    }
}

/// Serves a fresh in-memory dynoxide database on an ephemeral loopback port.
async fn start_dynoxide() -> (String, oneshot::Sender<()>) {
    let db = dynoxide::Database::memory().expect("in-memory engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = dynoxide::server::serve_with_shutdown(listener, db, async {
            let _ = stopped.await;
        })
        .await;
    });
    (format!("http://{addr}"), stop)
}
