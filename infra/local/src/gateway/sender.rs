//! How the fan-out handler reaches `@connections` in local mode: the real SDK client over HTTP,
//! or straight into the gateway's per-connection queue with the same answers.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use statecast::ids::ConnectionId;
use statecast::ports::ConnectionSender;
use statecast::{Error, Result};

use super::management::{post, PostError};
use super::{Gateway, Injected};

/// The transport of the fan-out's `@connections` posts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConnectionsTransport {
    /// Queue frames on the sockets directly ([`InProcessSender`]): no HTTP, no SigV4.
    #[default]
    InProcess,
    /// `PostToConnection` with the AWS SDK over HTTP, as the deployed fan-out does.
    Http,
}

impl FromStr for ConnectionsTransport {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "in-process" => Ok(ConnectionsTransport::InProcess),
            "http" => Ok(ConnectionsTransport::Http),
            other => Err(format!("unknown transport {other:?} (expected `in-process` or `http`)")),
        }
    }
}

/// A [`ConnectionSender`] that posts into the gateway in-process: unknown, closed or
/// still-connecting ids fail with [`Error::ConnectionGone`] (410), frames over the message
/// limit with [`Error::TooLarge`] (413), exactly as over HTTP.
#[derive(Clone)]
pub struct InProcessSender {
    gateway: Arc<Gateway>,
}

impl InProcessSender {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

#[async_trait]
impl ConnectionSender for InProcessSender {
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()> {
        match self.gateway.inject(to.as_str()).await {
            None => {}
            Some(Injected::Gone) => return Err(Error::ConnectionGone(to.clone())),
            Some(Injected::Throttled) => {
                return Err(Error::Throttled {
                    operation: "PostToConnection",
                    source: "LimitExceededException (injected 429)".into(),
                })
            }
            Some(Injected::Error) => {
                return Err(Error::Dependency {
                    operation: "PostToConnection",
                    retryable: true,
                    source: "InternalServerErrorException (injected 500)".into(),
                })
            }
        }
        match post(&self.gateway, to.as_str(), frame) {
            Ok(()) => Ok(()),
            Err(PostError::Gone) => Err(Error::ConnectionGone(to.clone())),
            Err(e @ PostError::TooLarge { .. }) => Err(Error::TooLarge(e.message(to.as_str()))),
        }
    }
}

/// An [`InProcessSender`] for handlers built before their gateway (the routes that post are
/// part of it): set once the gateway exists; until then every post answers 410.
#[derive(Clone, Default)]
pub struct LateSender {
    slot: Arc<OnceLock<InProcessSender>>,
}

impl LateSender {
    /// Posts from now on go to `gateway` (the first call wins).
    pub fn attach(&self, gateway: Arc<Gateway>) {
        let _ = self.slot.set(InProcessSender::new(gateway));
    }
}

#[async_trait]
impl ConnectionSender for LateSender {
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()> {
        match self.slot.get() {
            Some(sender) => sender.send(to, frame).await,
            None => Err(Error::ConnectionGone(to.clone())),
        }
    }
}
