//! Test support: the test keys, token signing, authorizers from env-style variables, and a
//! loopback JWKS server that counts its fetches and can rotate keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use statecast_authorizer::{AuthConfig, Authorizer};

pub const SECRET: &str = "statecast-test-secret-at-least-32-bytes";
pub const ISSUER: &str = "https://issuer.statecast.test/";
pub const AUDIENCE: &str = "statecast";
pub const RSA_A: &str = include_str!("../keys/rsa_a.pem");
pub const RSA_A_PUBLIC: &str = include_str!("../keys/rsa_a.pub.pem");
pub const RSA_B: &str = include_str!("../keys/rsa_b.pem");
pub const EC_A: &str = include_str!("../keys/ec_a.pem");

pub fn now() -> i64 {
    i64::try_from(get_current_timestamp()).expect("a timestamp fits i64")
}

/// Claims of a valid token (tenant `acme`, sub `alice`, the test issuer and audience, 5 min left);
/// `changes` replaces claims, and a `null` removes one.
pub fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "sub": "alice", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now(), "exp": now() + 300,
    });
    let map = claims.as_object_mut().expect("claims are an object");
    for (name, value) in changes.as_object().expect("changes are an object") {
        match value {
            Value::Null => map.remove(name),
            value => map.insert(name.clone(), value.clone()),
        };
    }
    claims
}

pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("the test token signs")
}

pub fn hs256(secret: &[u8], claims: &Value) -> String {
    sign(Algorithm::HS256, None, &EncodingKey::from_secret(secret), claims)
}

pub fn rs256(pem: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test RSA key");
    sign(Algorithm::RS256, Some(kid), &key, claims)
}

pub fn es256(pem: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("test EC key");
    sign(Algorithm::ES256, Some(kid), &key, claims)
}

/// A token assembled by hand from a header, claims and a raw signature part.
pub fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// The public JWK of a private PEM key, as an identity provider publishes it.
pub fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Jwk {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("test key");
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("test JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

/// An authorizer configured as `AuthConfig::from_env` would be by these variables.
pub fn authorizer(vars: &[(&str, &str)]) -> Authorizer {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = AuthConfig::from_lookup(|name| vars.get(name).cloned()).expect("test config");
    Authorizer::new(config).expect("test authorizer")
}

#[derive(Clone, Default)]
struct Published {
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

/// A JWKS endpoint on 127.0.0.1 serving whatever was last published.
pub struct JwksServer {
    pub url: String,
    published: Published,
}

impl JwksServer {
    pub async fn start(keys: Vec<Jwk>) -> Self {
        let published = Published::default();
        *published.keys.lock().expect("keys lock") = keys;
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, published }
    }

    /// Replaces the served keys (a key rotation).
    pub fn publish(&self, keys: Vec<Jwk>) {
        *self.published.keys.lock().expect("keys lock") = keys;
    }

    pub fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(published): State<Published>) -> Json<JwkSet> {
    published.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = published.keys.lock().expect("keys lock").clone();
    Json(JwkSet { keys })
}
