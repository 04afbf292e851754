//! The WebSocket gateway emulator: API Gateway's WebSocket API and its `@connections`
//! management API on one loopback port, calling the same handlers the Lambdas run.

mod authorize;
mod events;
mod faults;
mod linger;
mod management;
mod registry;
mod sender;
mod socket;
mod virtual_subscribers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::{info, warn};

pub use authorize::AuthorizerFn;
pub use faults::{FaultPlan, Faults, Injected, LatencyRange};
pub use linger::{Lingering, LingeringListener, LINGER};
pub use registry::{Connection, Registry, SLOW_CONSUMER};
pub use sender::{ConnectionsTransport, InProcessSender, LateSender};
pub use virtual_subscribers::{Receipt, Tally, VirtualSubscribers};

/// A route's handler: an API Gateway WebSocket event in, a proxy response out.
pub type WsHandler = Arc<
    dyn Fn(
            ApiGatewayWebsocketProxyRequest,
        ) -> BoxFuture<'static, Result<ApiGatewayProxyResponse, lambda_runtime::Error>>
        + Send
        + Sync,
>;

/// The integrations of `$connect`, `$disconnect` and `$default` (the routes the template
/// declares).
#[derive(Clone)]
pub struct Routes {
    /// The `$connect` route's REQUEST authorizer; `None` means `AuthorizationType: NONE`.
    pub authorizer: Option<AuthorizerFn>,
    pub connect: WsHandler,
    pub disconnect: WsHandler,
    pub default: WsHandler,
}

/// API Gateway WebSocket quotas, and how local mode bounds and schedules each connection.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub idle_timeout: Duration,
    pub max_connection_duration: Duration,
    /// Bytes of frames (route responses and `@connections` posts) that may wait for one
    /// client's socket; one more closes it with [`SLOW_CONSUMER`] (1008) and answers 410.
    pub max_queued_bytes: usize,
    /// How long a closing connection may take to write its close frame before the socket is
    /// dropped (a client that stopped reading never takes it).
    pub close_timeout: Duration,
    /// Route invocations one connection may have in flight: 1 handles its frames one at a
    /// time; more lets them overlap, as API Gateway may, so replies can come in any order.
    pub max_concurrent_frames: usize,
    /// Bytes each socket reads at a time, and its read buffer's starting size. tungstenite's
    /// default (128 KiB) is zero-filled on the first read, so every open connection would
    /// hold 128 KiB resident; client frames are mostly ~100 bytes, and the buffer grows for a
    /// larger one (up to the frame and message limits above, which stay enforced).
    pub read_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_connection_duration: Duration::from_secs(2 * 60 * 60),
            max_queued_bytes: 1024 * 1024,
            close_timeout: Duration::from_secs(2),
            max_concurrent_frames: 1,
            read_buffer_bytes: 4 * 1024,
        }
    }
}

pub struct Gateway {
    pub(crate) routes: Routes,
    pub(crate) limits: Limits,
    pub(crate) stage: String,
    pub(crate) domain_name: String,
    pub(crate) registry: Registry,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Marked after every route integration returns: it may have written to a table.
    pub(crate) routed: watch::Sender<()>,
    /// Connections whose `$disconnect` is to be lost (as API Gateway may lose one), for tests.
    pub(crate) lost_disconnects: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Faults injected into `@connections` posts (none by default).
    pub(crate) faults: Option<Faults>,
}

impl Gateway {
    pub fn new(
        routes: Routes,
        limits: Limits,
        stage: String,
        domain_name: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            routes,
            limits,
            stage,
            domain_name,
            registry: Registry::default(),
            shutdown,
            routed: watch::Sender::new(()),
            lost_disconnects: Default::default(),
            faults: None,
        }
    }

    /// Injects `plan`'s faults into every `@connections` post (in-process and over HTTP).
    pub fn with_faults(mut self, plan: FaultPlan) -> Self {
        self.faults = (!plan.is_off()).then(|| Faults::new(plan));
        self
    }

    /// Applies the fault plan to one post to `connection`: `None` lets it through. An
    /// injected 410 drops the connection first, losing its `$disconnect`.
    pub(crate) async fn inject(&self, connection: &str) -> Option<Injected> {
        let injected = self.faults.as_ref()?.before_post().await?;
        if injected == Injected::Gone {
            if let Some(live) = self.registry.get(connection) {
                self.lose_disconnect_of(connection);
                live.end(1001, "Going away".into(), true);
            }
        }
        Some(injected)
    }

    /// When `connection` ends, skip its `$disconnect` (API Gateway delivers it on a best-effort
    /// basis): the backend then learns it is gone only from a post that answers 410.
    pub fn lose_disconnect_of(&self, connection: &str) {
        self.lost_disconnects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.to_owned());
    }

    /// Changes each time a route integration (`$default` or a custom route) has returned, so
    /// a stream poller can look for the records it wrote at once instead of at its next poll.
    pub fn routed(&self) -> watch::Receiver<()> {
        self.routed.subscribe()
    }

    /// Connections currently open or in `$connect`, oldest first.
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.registry.list()
    }

    /// Connections currently open or in `$connect`.
    pub fn connection_count(&self) -> usize {
        self.registry.len()
    }

    /// Waits until every socket task has finished its `$disconnect`.
    pub async fn drained(&self, timeout: Duration) -> bool {
        self.registry.wait_empty(timeout).await
    }
}

/// `GET /` or `GET /{stage}` upgrades; `/@connections/{id}` (optionally under the stage) manages.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/", get(upgrade))
        .route("/dist/app.js", get(crate::page::script))
        .route("/{stage}", get(upgrade))
        .route("/@connections/{id}", any(management::handle))
        .route("/{stage}/@connections/{id}", any(management::handle_staged))
        .with_state(gateway)
}

/// Runs `$connect`; upgrades only when it answers 2xx, otherwise returns its status.
async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        // A browser opening the root gets the demo page.
        if uri.path() == "/" {
            return crate::page::index();
        }
        return (StatusCode::UPGRADE_REQUIRED, "this is a WebSocket endpoint").into_response();
    };
    let connection = gateway.registry.open(peer, &headers, gateway.limits.max_queued_bytes);
    if let Err(status) = authorize::authorize(&gateway, &connection, &headers, query.as_deref()).await {
        gateway.registry.remove(&connection.id);
        return (status, status.canonical_reason().unwrap_or("Forbidden")).into_response();
    }
    let event = events::connect(&gateway, &connection, &headers, query.as_deref());
    let response = (gateway.routes.connect)(event).await;
    let status = match &response {
        Ok(r) => r.status_code,
        Err(e) => {
            warn!(error = %e, "$connect handler failed");
            500
        }
    };
    if !(200..300).contains(&status) {
        gateway.registry.remove(&connection.id);
        info!(connection = %connection.id, status, "$connect refused the upgrade");
        let code = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, "Forbidden").into_response();
    }
    let mut ws = ws
        .read_buffer_size(gateway.limits.read_buffer_bytes)
        .max_frame_size(gateway.limits.max_frame_bytes)
        .max_message_size(gateway.limits.max_message_bytes);
    let selected = response
        .ok()
        .and_then(|r| r.headers.get("sec-websocket-protocol").cloned());
    match selected.as_ref().map(|p| p.to_str()) {
        Some(Ok(protocol)) => ws = ws.protocols([protocol.to_owned()]),
        _ if headers.contains_key("sec-websocket-protocol") => {
            // API Gateway completes such a handshake too, and browsers then abort it.
            warn!(connection = %connection.id, "the client offered subprotocols and $connect selected none");
        }
        _ => {}
    }
    let failed = (gateway.clone(), connection.clone());
    ws.on_failed_upgrade(move |error| {
        let (gateway, connection) = failed;
        warn!(connection = %connection.id, %error, "the upgrade failed after $connect accepted it");
        tokio::spawn(async move { socket::disconnect(&gateway, &connection, 1006, "").await });
    })
    .on_upgrade(move |socket| socket::run(gateway, connection, socket))
}
