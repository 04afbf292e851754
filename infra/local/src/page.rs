//! The demo page local mode serves at `/`: a shared todo list and an `order` workflow, built
//! from the TypeScript client (`clients/typescript`, bundled into `infra/local/page/dist`;
//! the bundle is committed so `cargo run` needs no Node).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/dist/app.js");

/// `GET /` (without a WebSocket upgrade).
pub fn index() -> Response {
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        INDEX,
    )
        .into_response()
}

/// `GET /dist/app.js`.
pub async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}
