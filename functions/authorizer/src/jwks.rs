//! The JWKS of the identity provider: fetched once per container, refetched for an unknown `kid`
//! at most once per refresh interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::sync::{Mutex, RwLock};
use tracing::info;

use crate::config::ConfigError;
use crate::error::{AuthError, JwksError};
use crate::keyset::KeySet;

/// The cached key set and what fetches it.
pub(crate) struct Jwks {
    url: Url,
    client: reqwest::Client,
    refresh_interval: Duration,
    keys: RwLock<KeySet>,
    /// When the last fetch started; held across a fetch so concurrent misses share it.
    last_fetch: Mutex<Option<Instant>>,
}

impl Jwks {
    pub(crate) fn new(url: Url, timeout: Duration, refresh_interval: Duration) -> Result<Self, ConfigError> {
        Ok(Self {
            url,
            client: http_client(timeout)?,
            refresh_interval,
            keys: RwLock::new(KeySet::default()),
            last_fetch: Mutex::new(None),
        })
    }

    /// The key for (`kid`, `alg`), fetching the JWKS first if it is not cached and the last
    /// fetch is older than the refresh interval.
    pub(crate) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<DecodingKey>, AuthError> {
        if let Some(key) = self.keys.read().await.find(kid, alg) {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        if let Some(key) = self.keys.read().await.find(kid, alg) {
            return Ok(key);
        }
        let unknown = || AuthError::UnknownKey {
            kid: kid.map(str::to_owned),
            alg,
        };
        if last_fetch.is_some_and(|at| at.elapsed() < self.refresh_interval) {
            return Err(unknown());
        }
        *last_fetch = Some(Instant::now());
        let fresh = self.fetch().await?;
        let key = fresh.find(kid, alg);
        *self.keys.write().await = fresh;
        key.ok_or_else(unknown)
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(JwksError::Request)?;
        let status = response.status();
        if !status.is_success() {
            return Err(JwksError::Status(status.as_u16()));
        }
        let body = response.bytes().await.map_err(JwksError::Request)?;
        let keys = KeySet::parse(&body).map_err(JwksError::Body)?;
        info!(url = %self.url, "JWKS fetched");
        Ok(keys)
    }
}

/// An HTTP client with a total timeout, rustls on the `ring` provider and the platform's roots.
/// Redirects are not followed: one to plain http would let anyone on the path hand out keys.
fn http_client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| ConfigError::HttpClient(Box::new(e)))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::HttpClient(Box::new(e)))
}
