//! TLS for `wss://` URLs: rustls with the ring provider and the platform's certificate
//! verifier, configured per client (no process-wide crypto provider is installed).

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_platform_verifier::BuilderVerifierExt;
use tokio_tungstenite::Connector;

use crate::error::ClientError;

/// The connector for `scheme`: rustls for `wss`, none (plain TCP) otherwise.
pub(crate) fn connector(scheme: Option<&str>) -> Result<Option<Connector>, ClientError> {
    if scheme != Some("wss") {
        return Ok(None);
    }
    let tls_error = |e: rustls::Error| ClientError::InvalidRequest(format!("TLS: {e}"));
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
    Ok(Some(Connector::Rustls(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wss_gets_rustls_and_ws_plain_tcp() {
        assert!(matches!(connector(Some("ws")), Ok(None)));
        assert!(matches!(connector(Some("wss")), Ok(Some(Connector::Rustls(_)))));
    }
}
