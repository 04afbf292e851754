//! Where a `$connect` request carries its token: the `token` query parameter or `Sec-WebSocket-Protocol`.
//!
//! Browsers cannot set `Authorization` on a WebSocket, so they offer the token as a subprotocol:
//! `Sec-WebSocket-Protocol: bearer, <jwt>`. The `$connect` response must then select (echo) one of
//! the offered protocols or the browser drops the connection; [`TokenSource::subprotocol`] says which.
//! A token offered alone (`Sec-WebSocket-Protocol: <jwt>`) is found but refused by the handler
//! (401): `$connect` can only select `bearer`, and echoing a credential back is no better.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::query_map::QueryMap;

use crate::header::looks_like_jwt;

/// The query-string parameter that carries a token.
pub const TOKEN_QUERY_PARAMETER: &str = "token";
/// The subprotocol entry that marks the next entry as the token.
pub use statecast::lambda_events::BEARER_SUBPROTOCOL;
const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// A token and where it came from. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `?token=<jwt>`.
    Query(String),
    /// `Sec-WebSocket-Protocol: bearer, <jwt>`.
    BearerSubprotocol(String),
    /// A JWT-shaped entry of `Sec-WebSocket-Protocol` without a `bearer` marker: refused.
    BareSubprotocol(String),
}

impl TokenSource {
    pub fn token(&self) -> &str {
        match self {
            TokenSource::Query(t) | TokenSource::BearerSubprotocol(t) | TokenSource::BareSubprotocol(t) => t,
        }
    }

    /// The subprotocol the `$connect` response must select: `bearer`; `None` for a query-string
    /// token and for a bare one (which is refused, so nothing is selected).
    pub fn subprotocol(&self) -> Option<&str> {
        match self {
            TokenSource::Query(_) | TokenSource::BareSubprotocol(_) => None,
            TokenSource::BearerSubprotocol(_) => Some(BEARER_SUBPROTOCOL),
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            TokenSource::Query(_) => "Query",
            TokenSource::BearerSubprotocol(_) => "BearerSubprotocol",
            TokenSource::BareSubprotocol(_) => "BareSubprotocol",
        };
        write!(f, "{kind}(<redacted>)")
    }
}

/// Single-valued query parameters, whatever map holds them.
pub trait QueryParams {
    fn param(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> QueryParams for HashMap<String, String, S> {
    fn param(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl QueryParams for BTreeMap<String, String> {
    fn param(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl QueryParams for QueryMap {
    fn param(&self, name: &str) -> Option<&str> {
        self.first(name)
    }
}

/// The token of a `$connect` request: `?token=` first, then `Sec-WebSocket-Protocol`.
pub fn token_from_request(query: &(impl QueryParams + ?Sized), headers: &HeaderMap) -> Option<TokenSource> {
    if let Some(token) = query
        .param(TOKEN_QUERY_PARAMETER)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(TokenSource::Query(token.to_owned()));
    }
    let offered: Vec<&str> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let after_bearer = offered
        .iter()
        .position(|p| p.eq_ignore_ascii_case(BEARER_SUBPROTOCOL))
        .and_then(|i| offered.get(i + 1));
    match after_bearer {
        Some(token) => Some(TokenSource::BearerSubprotocol((*token).to_owned())),
        None => offered
            .into_iter()
            .find(|p| looks_like_jwt(p))
            .map(|t| TokenSource::BareSubprotocol(t.to_owned())),
    }
}
