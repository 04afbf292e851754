//! A subscription as a `Stream` of [`Update`]s; dropping it (or `unsubscribe`) unsubscribes.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::error::ClientError;
use crate::router::Command;
use crate::update::Update;

/// The changes of one actor. Yields the state on subscribing and after every change; ends
/// when the server refuses the subscription or the client closes.
pub struct Subscription {
    actor: String,
    listener: u64,
    updates: mpsc::UnboundedReceiver<Result<Update, ClientError>>,
    commands: mpsc::UnboundedSender<Command>,
    error: Option<ClientError>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("actor", &self.actor)
            .field("error", &self.error)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        actor: String,
        listener: u64,
        updates: mpsc::UnboundedReceiver<Result<Update, ClientError>>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Subscription {
        Subscription {
            actor,
            listener,
            updates,
            commands,
            error: None,
        }
    }

    /// The actor followed.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Why the stream ended (the server refused the subscription, or the client closed);
    /// `None` while it runs.
    pub fn error(&self) -> Option<&ClientError> {
        self.error.as_ref()
    }

    /// Stops following the actor (the same as dropping the subscription).
    pub fn unsubscribe(self) {}
}

impl Stream for Subscription {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        if self.error.is_some() {
            return Poll::Ready(None);
        }
        match self.updates.poll_recv(cx) {
            Poll::Ready(Some(Ok(update))) => Poll::Ready(Some(update)),
            Poll::Ready(Some(Err(error))) => {
                self.error = Some(error);
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.error = Some(ClientError::Closed);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe {
            actor: std::mem::take(&mut self.actor),
            listener: self.listener,
        });
    }
}
