//! The local inspector: a page at `/_inspector` and the JSON it reads, `/_inspector/api/state`,
//! served by local mode only and only to loopback clients. It shows the live connections (tenant,
//! subscriptions), the actors (state, version, epoch, the request that wrote them), the last
//! calls and frames, each event source mapping (position, lag, retries, the on-failure sink) and
//! every workflow instance as a step graph with statuses and attempts.
//!
//! - `journal`: what went by (bounded); `taps`: the wrappers that fill it.
//! - `snapshot`: the state document the page renders.

mod journal;
mod snapshot;
pub mod taps;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use statecast::application::Application;
use statecast::dynamo::DynamoStore;

pub use journal::{ActorEntry, BatchEntry, CallEntry, Direction, FrameEntry, Journal};

use crate::esm::EsmObserver;
use crate::gateway::Gateway;

const PAGE: &str = include_str!("../../page/inspector.html");

/// A stream mapping as the inspector shows it.
#[derive(Clone)]
pub struct MappingView {
    /// The journal's name for it (`actors`, `workflows`).
    pub name: &'static str,
    pub function: &'static str,
    pub table: String,
    pub observer: EsmObserver,
}

/// Everything the page shows, read live.
pub struct Inspector {
    journal: Arc<Journal>,
    gateway: Arc<Gateway>,
    store: Arc<DynamoStore>,
    application: Application,
    mappings: Mutex<Vec<MappingView>>,
}

impl Inspector {
    pub fn new(
        journal: Arc<Journal>,
        gateway: Arc<Gateway>,
        store: Arc<DynamoStore>,
        application: Application,
    ) -> Self {
        Self {
            journal,
            gateway,
            store,
            application,
            mappings: Mutex::new(Vec::new()),
        }
    }

    /// Shows `mapping` (added once it runs).
    pub fn add_mapping(&self, mapping: MappingView) {
        self.mappings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mapping);
    }

    fn mappings(&self) -> Vec<MappingView> {
        self.mappings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// `/_inspector` and `/_inspector/api/state`.
pub fn router(inspector: Arc<Inspector>) -> Router {
    Router::new()
        .route("/_inspector", get(page))
        .route("/_inspector/api/state", get(state))
        .with_state(inspector)
}

/// What a client on another machine gets: the inspector shows every tenant's data.
fn refused() -> Response {
    (StatusCode::FORBIDDEN, "the inspector answers loopback clients only").into_response()
}

async fn page(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !peer.ip().is_loopback() {
        return refused();
    }
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        PAGE,
    )
        .into_response()
}

async fn state(State(inspector): State<Arc<Inspector>>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !peer.ip().is_loopback() {
        return refused();
    }
    ([(CACHE_CONTROL, "no-store")], Json(inspector.snapshot().await)).into_response()
}
