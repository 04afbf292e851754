//! A minimal Lambda Runtime API: hands out one event per `next` call and reports when the
//! function posts its response (or error), which is what "first event handled" means here.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

/// What the function answered for request `id`.
#[derive(Debug)]
pub struct Answer {
    pub id: String,
    pub ok: bool,
    pub body: String,
}

#[derive(Clone)]
struct Shared {
    event: Arc<Mutex<Option<(String, String)>>>,
    answers: mpsc::UnboundedSender<Answer>,
}

/// Serves on `127.0.0.1:0`; returns its `host:port` and the stream of answers.
pub async fn serve() -> std::io::Result<(String, RuntimeApi, mpsc::UnboundedReceiver<Answer>)> {
    let (answers, received) = mpsc::unbounded_channel();
    let shared = Shared {
        event: Arc::new(Mutex::new(None)),
        answers,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, RuntimeApi { shared }, received))
}

/// Queues the next event a function will receive.
pub struct RuntimeApi {
    shared: Shared,
}

impl RuntimeApi {
    pub fn queue(&self, request_id: &str, event: &str) {
        *self.shared.event.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((request_id.to_owned(), event.to_owned()));
    }
}

async fn next(State(shared): State<Shared>) -> impl IntoResponse {
    loop {
        let queued = shared.event.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((id, body)) = queued {
            let mut headers = HeaderMap::new();
            let deadline = statecast::records::now_millis() + 60_000;
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:bench".into(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".into(),
                ),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (headers, body);
        }
        // A new process only asks after it is ready; later polls wait for the next queue.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        id,
        ok: true,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        id,
        ok: false,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer {
        id: "init".into(),
        ok: false,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::ACCEPTED
}
