//! Wires local mode together: engine → tables → handlers (the Lambda crates' own functions)
//! → gateway + `@connections` → event source mappings on the actors stream (fan-out) and the
//! workflows stream (steps), plus the durable-timer sweep.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use axum::serve::ListenerExt;
use lambda_runtime::{Context, LambdaEvent};
use statecast::app::application;
use statecast::application::{Application, Services, Stores};
use statecast::connections_api::ApiGatewaySender;
use statecast::dynamo::{create_tables, DynamoStore, TableNames};
use statecast::ids::TenantId;
use statecast::ports::ConnectionSender;
use statecast::service::Settings;
use statecast::workflow::WorkflowSettings;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::engine::{loopback_sdk_config, Engine, EngineError, StreamReader, StreamRetention};
use crate::esm::{stream_arn, DynamoPositions, EsmConfig, EsmHandle, EventSourceMapping, PositionError, StreamHandler};
use crate::gateway::{
    self, AuthorizerFn, ConnectionsTransport, FaultPlan, Gateway, InProcessSender, LateSender, Limits, Routes,
    WsHandler,
};
use crate::inspector::{self, taps, Inspector, Journal, MappingView};
use crate::pages::{LocalPageQueue, PageQueueConfig, PagesHandler};
use crate::triggers::{LocalQueues, QueueConfig, TriggerServer};
use crate::workflows::{spawn_timer_sweep, workflow_esm_config, workflow_handler};
use statecast_authorizer::{AuthConfig, Authorizer};

/// How to run local mode; [`LocalOptions::default`] is what `cargo run -p statecast-local` uses.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub stage: String,
    /// SQLite file for the embedded engine; `None` keeps everything in memory.
    pub data: Option<PathBuf>,
    /// Use this DynamoDB-compatible endpoint instead of the embedded engine.
    pub dynamodb_endpoint: Option<String>,
    pub table_prefix: String,
    /// Tenant of every connection while auth is off; `None` refuses every `$connect` (401).
    /// Ignored when `auth` is set: the token's tenant claim decides.
    pub dev_tenant: Option<String>,
    /// Run the `$connect` JWT authorizer on every upgrade, as the deployed stack does.
    pub auth: Option<AuthConfig>,
    pub ttl_sweep_interval: Duration,
    pub limits: Limits,
    pub esm: EsmConfig,
    pub settings: Settings,
    /// The actor types and workflows served (what every function is built from).
    pub application: Application,
    pub workflow_settings: WorkflowSettings,
    /// How often due durable timers are fired (a schedule event in AWS).
    pub timer_sweep_interval: Duration,
    /// How the fan-out posts to `@connections`: in-process (fast) or over HTTP with the SDK.
    pub connections_transport: ConnectionsTransport,
    /// How long the embedded engine keeps stream records.
    pub stream_retention: StreamRetention,
    /// Faults and latency injected into `@connections` posts (none by default).
    pub connection_faults: FaultPlan,
    /// Serve the inspector at `/_inspector` (and record what it shows); the binary turns it on.
    pub inspector: bool,
    /// Port of the trigger endpoint (webhooks, queues, schedules); 0 picks a free one. `None`:
    /// the port after `port` (8788 by default), or a free one when `port` is 0.
    pub trigger_port: Option<u16>,
    /// Trigger secrets by variable name, before the environment and [`DEV_SECRET`].
    pub trigger_secrets: BTreeMap<String, String>,
    /// The local queues' batch size, receives before the dead-letter list, visibility timeout.
    pub queues: QueueConfig,
    /// Rate schedules tick this many times faster than declared (1: as deployed).
    pub schedule_speedup: u32,
}

/// The secret of a trigger whose variable is set neither in the options nor the environment.
pub const DEV_SECRET: &str = "dev-secret";

/// A trigger secret in local mode: `overrides`, then the environment, then [`DEV_SECRET`].
pub fn local_secret(overrides: &BTreeMap<String, String>, name: &str) -> String {
    overrides
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEV_SECRET.to_owned())
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8787,
            stage: "local".into(),
            data: None,
            dynamodb_endpoint: None,
            table_prefix: "statecast-".into(),
            dev_tenant: Some("dev".into()),
            auth: None,
            ttl_sweep_interval: Duration::from_secs(60),
            limits: Limits::default(),
            esm: EsmConfig::default(),
            settings: Settings::default(),
            application: application().expect("the shipped application is valid"),
            workflow_settings: WorkflowSettings::default(),
            timer_sweep_interval: Duration::from_millis(250),
            connections_transport: ConnectionsTransport::default(),
            stream_retention: StreamRetention::default(),
            connection_faults: FaultPlan::default(),
            inspector: false,
            trigger_port: None,
            trigger_secrets: BTreeMap::new(),
            queues: QueueConfig::default(),
            schedule_speedup: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot create the tables: {0}")]
    Tables(#[source] statecast::Error),
    #[error("the actors table has no stream: {0}")]
    Stream(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("invalid dev tenant: {0}")]
    Tenant(#[from] statecast::ids::IdError),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] statecast_authorizer::ConfigError),
    #[error("cannot keep the event source mappings' positions: {0}")]
    Positions(#[from] PositionError),
    #[error(transparent)]
    Triggers(#[from] statecast::trigger::TriggerError),
}

/// The running stack.
pub struct LocalStack {
    /// `http://host:port/`: the demo page.
    pub page_url: String,
    /// `http://host:port/_inspector` when [`LocalOptions::inspector`] is on.
    pub inspector_url: Option<String>,
    /// `ws://host:port/{stage}`: where clients connect.
    pub ws_url: String,
    /// `http://host:port/{stage}`: the `@connections` endpoint.
    pub connections_url: String,
    pub dynamodb_endpoint: String,
    pub tables: TableNames,
    pub sdk: SdkConfig,
    pub esm: EsmHandle,
    /// The event source mapping on the workflows table's stream.
    pub workflow_esm: EsmHandle,
    /// `http://host:port` of the triggers: `/hooks/{trigger}`, `/queues/{queue}`, `/schedules/{name}`.
    pub triggers_url: String,
    /// The local queues feeding queue triggers.
    pub queues: LocalQueues,
    /// Schedule triggers that run only when fired by hand (cron expressions).
    pub manual_schedules: Vec<String>,
    /// The queue a spread actor's fan-out pages go through to the page worker.
    pub pages: LocalPageQueue,
    triggers: TriggerServer,
    gateway: Arc<Gateway>,
    timers: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    sweeper: Option<JoinHandle<()>>,
    trimmer: Option<JoinHandle<()>>,
    engine: Engine,
}

impl LocalStack {
    pub async fn start(options: LocalOptions) -> Result<LocalStack, StartError> {
        let engine = match &options.dynamodb_endpoint {
            Some(endpoint) => Engine::external(endpoint.clone()),
            None => Engine::embedded(options.data.as_deref()).await?,
        };
        let sdk = loopback_sdk_config(&engine.endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let tables = TableNames::with_prefix(&options.table_prefix);
        create_tables(&dynamo, &tables).await.map_err(StartError::Tables)?;
        // The mappings continue where they stopped, as on AWS (a local-only table, same engine).
        let positions = DynamoPositions::open(dynamo.clone(), format!("{}esm-positions", options.table_prefix)).await?;
        let mut esm_config = options.esm.clone();
        esm_config.positions.get_or_insert(positions);
        if options.settings.metrics.is_on() && !esm_config.metrics.is_on() {
            esm_config.metrics = options.settings.metrics.clone();
        }

        let addr = SocketAddr::new(options.host, options.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?;
        let ws_url = format!("ws://{bound}/{}", options.stage);
        let connections_url = format!("http://{bound}/{}", options.stage);

        let mut settings = options.settings.clone();
        settings.default_tenant = match options.auth {
            Some(_) => None,
            None => options.dev_tenant.clone().map(TenantId::new).transpose()?,
        };
        let store = Arc::new(DynamoStore::new(dynamo.clone(), tables.clone()));
        let journal = options.inspector.then(|| Arc::new(Journal::default()));
        let mut workflow_settings = options.workflow_settings.clone();
        if !workflow_settings.metrics.is_on() {
            workflow_settings.metrics = settings.metrics.clone();
        }
        // `$default` and `$disconnect` post (replies in parts, broadcasts, presence) through
        // `@connections` with the fan-out's transport: over HTTP with the SDK as deployed, or
        // in-process into the gateway (built from these routes, so attached below).
        let late = LateSender::default();
        let transport = options.connections_transport;
        let sender: Arc<dyn ConnectionSender> = match transport {
            ConnectionsTransport::InProcess => Arc::new(late.clone()),
            ConnectionsTransport::Http => Arc::new(ApiGatewaySender::on_endpoint(&sdk, &connections_url)),
        };
        let services = Services::new(
            options.application.clone(),
            Stores::all(store.clone()),
            settings,
            workflow_settings,
        )
        .with_sender(sender);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut routes = routes(&services);
        routes.authorizer = options.auth.clone().map(authorizer).transpose()?;
        if let Some(journal) = &journal {
            routes.default = taps::default_route(journal.clone(), routes.default);
        }
        let gateway = Arc::new(
            Gateway::new(
                routes,
                options.limits.clone(),
                options.stage.clone(),
                bound.to_string(),
                shutdown_rx.clone(),
            )
            .with_faults(options.connection_faults.clone()),
        );
        late.attach(gateway.clone());
        let inspector = journal.as_ref().map(|journal| {
            let app = options.application.clone();
            Arc::new(Inspector::new(journal.clone(), gateway.clone(), store.clone(), app))
        });
        let mut router = gateway::router(gateway.clone());
        if let Some(inspector) = &inspector {
            router = router.merge(inspector::router(inspector.clone()));
        }
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        // Small frames must not wait for delayed ACKs (Nagle): API Gateway pushes them at once.
        let listener = gateway::LingeringListener::new(listener).tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut server_stop = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop).await;
        });

        let (mut fanout, pages) =
            fanout_handler(&sdk, &connections_url, &gateway, transport, &services, journal.as_ref());
        let mut workflow = workflow_handler(services.workflow());
        if let Some(journal) = &journal {
            fanout = taps::stream(journal.clone(), "actors", true, fanout);
            workflow = taps::stream(journal.clone(), "workflows", false, workflow);
        }
        let arn = stream_arn(&dynamo, &tables.actors)
            .await
            .map_err(|e| StartError::Stream(e.to_string()))?;
        let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
        let esm = EventSourceMapping::start_woken_by(streams, arn, esm_config.clone(), fanout, gateway.routed());
        let workflow_arn = stream_arn(&dynamo, &tables.workflows)
            .await
            .map_err(|e| StartError::Stream(e.to_string()))?;
        let workflow_esm = EventSourceMapping::start(
            aws_sdk_dynamodbstreams::Client::new(&sdk),
            workflow_arn,
            workflow_esm_config(&esm_config),
            workflow,
        );
        if let Some(inspector) = &inspector {
            for (name, function, table, handle) in [
                ("actors", "statecast-fanout", &tables.actors, &esm),
                ("workflows", "statecast-workflow", &tables.workflows, &workflow_esm),
            ] {
                inspector.add_mapping(MappingView {
                    name,
                    function,
                    table: table.clone(),
                    observer: handle.observer(),
                });
            }
        }
        let triggers = start_triggers(&options, &services, shutdown_rx.clone()).await?;
        let timers = spawn_timer_sweep(services.workflow(), options.timer_sweep_interval, shutdown_rx.clone());
        let readers = vec![
            StreamReader {
                table: tables.actors.clone(),
                positions: esm.positions(),
            },
            StreamReader {
                table: tables.workflows.clone(),
                positions: workflow_esm.positions(),
            },
        ];
        let trimmer = engine.spawn_stream_trimmer(options.stream_retention.clone(), readers, shutdown_rx.clone());
        let sweeper = engine.spawn_ttl_sweeper(options.ttl_sweep_interval, shutdown_rx);
        info!(%ws_url, %connections_url, dynamodb = %engine.endpoint, "local stack ready");
        Ok(LocalStack {
            page_url: format!("http://{bound}/"),
            inspector_url: inspector.map(|_| format!("http://{bound}/_inspector")),
            ws_url,
            connections_url,
            dynamodb_endpoint: engine.endpoint.clone(),
            tables,
            sdk,
            esm,
            workflow_esm,
            triggers_url: triggers.url.clone(),
            queues: triggers.queues.clone(),
            manual_schedules: triggers.manual_schedules.clone(),
            pages,
            triggers,
            gateway,
            timers,
            shutdown,
            server,
            sweeper,
            trimmer,
            engine,
        })
    }

    /// Connections currently open (or in `$connect`).
    pub fn connection_count(&self) -> usize {
        self.gateway.connection_count()
    }

    /// Opens `count` simulated subscribers in the gateway (their connection and subscription
    /// records are the caller's to store).
    pub fn open_virtual(&self, count: usize) -> crate::gateway::VirtualSubscribers {
        self.gateway.open_virtual(count)
    }

    /// Loses `connection`'s `$disconnect` when it ends (see [`Gateway::lose_disconnect_of`]).
    pub fn lose_disconnect_of(&self, connection: &str) {
        self.gateway.lose_disconnect_of(connection);
    }

    /// Closes every socket (each gets its `$disconnect`), stops the gateway, the stream
    /// poller and the sweeper, and closes the engine (flushing its SQLite file).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.gateway.drained(Duration::from_secs(10)).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        self.esm.shutdown().await;
        self.workflow_esm.shutdown().await;
        let _ = self.timers.await;
        self.triggers.stopped().await;
        for task in [self.sweeper, self.trimmer].into_iter().flatten() {
            let _ = task.await;
        }
        self.engine.stop().await;
    }
}

/// The `functions/trigger` handler behind local mode's trigger endpoint.
async fn start_triggers(
    options: &LocalOptions,
    services: &Services,
    shutdown: watch::Receiver<bool>,
) -> Result<TriggerServer, StartError> {
    let secrets = |name: &str| Some(local_secret(&options.trigger_secrets, name));
    let service = statecast::trigger::TriggerService::new(&options.application, services, secrets)?;
    let deps = statecast_trigger::Deps::new(service, statecast_trigger::QueueNames::default());
    let listener = trigger_listener(options).await?;
    let addr = SocketAddr::new(options.host, 0);
    TriggerServer::start(
        listener,
        deps,
        options.queues.clone(),
        options.schedule_speedup,
        shutdown,
    )
    .map_err(|source| StartError::Listen { addr, source })
}

/// The trigger endpoint's socket: the port asked for, or else the one after the gateway's
/// (any free one when that is taken, or when the gateway's port was picked freely).
async fn trigger_listener(options: &LocalOptions) -> Result<tokio::net::TcpListener, StartError> {
    let bind = |port: u16| {
        let addr = SocketAddr::new(options.host, port);
        async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })
        }
    };
    match (options.trigger_port, options.port) {
        (Some(port), _) => bind(port).await,
        (None, 0) => bind(0).await,
        (None, port) => match bind(port.saturating_add(1)).await {
            Ok(listener) => Ok(listener),
            Err(e) => {
                info!(error = %e, "the port after the gateway's is taken; triggers listen on a free one");
                bind(0).await
            }
        },
    }
}

/// A Lambda context with a request id, as the runtime would pass.
fn context(request_id: Option<String>) -> Context {
    let mut context = Context::default();
    context.request_id = request_id.unwrap_or_default();
    context
}

fn routes(services: &Services) -> Routes {
    let connect = Arc::new(services.connect());
    let disconnect = Arc::new(services.disconnect());
    let message = Arc::new(services.message());
    let connect: WsHandler = Arc::new(move |event| {
        let service = connect.clone();
        Box::pin(async move {
            let ctx = context(event.request_context.request_id.clone());
            statecast_connect::handler(&service, LambdaEvent::new(event, ctx)).await
        })
    });
    let disconnect: WsHandler = Arc::new(move |event| {
        let service = disconnect.clone();
        Box::pin(async move {
            let ctx = context(event.request_context.request_id.clone());
            statecast_disconnect::handler(&service, LambdaEvent::new(event, ctx)).await
        })
    });
    let default: WsHandler = Arc::new(move |event| {
        let service = message.clone();
        Box::pin(async move {
            let ctx = context(event.request_context.request_id.clone());
            statecast_default::handler(&service, LambdaEvent::new(event, ctx)).await
        })
    });
    Routes {
        authorizer: None,
        connect,
        disconnect,
        default,
    }
}

/// The `functions/authorizer` handler over `config`.
fn authorizer(config: AuthConfig) -> Result<AuthorizerFn, statecast_authorizer::ConfigError> {
    let authorizer = Arc::new(Authorizer::new(config)?);
    Ok(Arc::new(move |event| {
        let authorizer = authorizer.clone();
        Box::pin(async move {
            let ctx = context(event.request_context.request_id.clone());
            statecast_authorizer::handler(&authorizer, LambdaEvent::new(event, ctx)).await
        })
    }))
}

/// The fan-out Lambda's handler, and the queue its pages go through to the page worker's
/// handler; their `@connections` posts go in-process or over HTTP.
fn fanout_handler(
    sdk: &SdkConfig,
    connections_url: &str,
    gateway: &Arc<Gateway>,
    transport: ConnectionsTransport,
    services: &Services,
    journal: Option<&Arc<Journal>>,
) -> (StreamHandler, LocalPageQueue) {
    let mut sender: Arc<dyn ConnectionSender> = match transport {
        ConnectionsTransport::InProcess => Arc::new(InProcessSender::new(gateway.clone())),
        ConnectionsTransport::Http => Arc::new(ApiGatewaySender::on_endpoint(sdk, connections_url)),
    };
    if let Some(journal) = journal {
        sender = Arc::new(taps::RecordedPosts::new(journal.clone(), sender));
    }
    let worker = Arc::new(services.fanout(sender.clone()));
    let pages_handler: PagesHandler = Arc::new(move |event| {
        let worker = worker.clone();
        Box::pin(async move { statecast_fanout_pages::handler(&worker, LambdaEvent::new(event, context(None))).await })
    });
    let pages = LocalPageQueue::new(pages_handler, PageQueueConfig::default());
    let service = Arc::new(services.fanout(sender).with_pages(Arc::new(pages.clone())));
    let handler: StreamHandler = Arc::new(move |event| {
        let service = service.clone();
        Box::pin(async move { statecast_fanout::handler(&service, LambdaEvent::new(event, context(None))).await })
    });
    (handler, pages)
}
