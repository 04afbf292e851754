//! The `$connect` authorizer against real tokens: HS256 with a secret, RS256/ES256 from a
//! loopback JWKS server, and the handler's Allow/Deny policies.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use jsonwebtoken::Algorithm;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use statecast_authorizer::{
    handler, mint_hs256, token_from_request, AuthConfig, AuthError, Authorizer, ConfigError, TokenSource,
};

use support::*;

/// The variant name of a refusal, so a table can say which one it expects.
fn reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::Missing => "Missing",
        AuthError::BareSubprotocol => "BareSubprotocol",
        AuthError::Malformed(_) => "Malformed",
        AuthError::Expired => "Expired",
        AuthError::NotYetValid => "NotYetValid",
        AuthError::MissingExpiry => "MissingExpiry",
        AuthError::WrongIssuer => "WrongIssuer",
        AuthError::WrongAudience => "WrongAudience",
        AuthError::BadSignature => "BadSignature",
        AuthError::UnsupportedAlgorithm(_) => "UnsupportedAlgorithm",
        AuthError::UnknownKey { .. } => "UnknownKey",
        AuthError::MissingTenant { .. } => "MissingTenant",
        AuthError::InvalidTenant { .. } => "InvalidTenant",
        AuthError::MissingSubject => "MissingSubject",
        AuthError::Jwks(_) => "Jwks",
    }
}

/// Which authorizer a case runs against.
#[derive(Clone, Copy)]
enum Keys {
    SecretAndJwks,
    JwksOnly,
}

struct Case {
    name: &'static str,
    keys: Keys,
    token: String,
    /// `Ok(())`: accepted as tenant `acme`, sub `alice`; `Err(reason)`: refused for that reason.
    expect: Result<(), &'static str>,
}

fn case(name: &'static str, token: String, expect: Result<(), &'static str>) -> Case {
    Case {
        name,
        keys: Keys::SecretAndJwks,
        token,
        expect,
    }
}

fn cases() -> Vec<Case> {
    let valid = claims(json!({}));
    let secret = SECRET.as_bytes();
    let hs = |changes: Value| hs256(secret, &claims(changes));
    let none_header = json!({ "alg": "none", "typ": "JWT" });
    let rs_header_with_hmac_signature = {
        let hmac_token = hs256(secret, &valid);
        let signature = hmac_token.rsplit('.').next().unwrap_or_default().to_owned();
        raw_token(&json!({ "alg": "RS256", "kid": "rsa-a" }), &valid, &signature)
    };
    let tampered = {
        let token = hs256(secret, &valid);
        let parts: Vec<&str> = token.split('.').collect();
        let other = raw_token(&json!({}), &claims(json!({ "tenant": "other" })), "");
        let forged_claims = other.split('.').nth(1).unwrap_or_default();
        format!("{}.{forged_claims}.{}", parts[0], parts[2])
    };
    let minted = mint_hs256(
        SECRET,
        "acme",
        "alice",
        Duration::from_secs(60),
        Some(ISSUER),
        Some(AUDIENCE),
    );
    vec![
        case("valid HS256", hs256(secret, &valid), Ok(())),
        case("valid HS256 from mint_hs256", minted.expect("mint"), Ok(())),
        case("valid RS256 from the JWKS", rs256(RSA_A, "rsa-a", &valid), Ok(())),
        case("valid ES256 from the JWKS", es256(EC_A, "ec-a", &valid), Ok(())),
        case(
            "expired 40 s ago, beyond the 30 s leeway",
            hs(json!({ "exp": now() - 40 })),
            Err("Expired"),
        ),
        case(
            "expired 20 s ago, inside the 30 s leeway",
            hs(json!({ "exp": now() - 20 })),
            Ok(()),
        ),
        case("nbf 120 s ahead", hs(json!({ "nbf": now() + 120 })), Err("NotYetValid")),
        case(
            "nbf 10 s ahead, inside the leeway",
            hs(json!({ "nbf": now() + 10 })),
            Ok(()),
        ),
        case("no exp", hs(json!({ "exp": null })), Err("MissingExpiry")),
        case("wrong aud", hs(json!({ "aud": "someone-else" })), Err("WrongAudience")),
        case(
            "no aud although one is configured",
            hs(json!({ "aud": null })),
            Err("WrongAudience"),
        ),
        case(
            "wrong iss",
            hs(json!({ "iss": "https://evil.test/" })),
            Err("WrongIssuer"),
        ),
        case(
            "no iss although one is configured",
            hs(json!({ "iss": null })),
            Err("WrongIssuer"),
        ),
        case(
            "alg none, empty signature",
            raw_token(&none_header, &valid, ""),
            Err("UnsupportedAlgorithm"),
        ),
        case(
            "HS384 is not on the allow-list",
            sign(
                Algorithm::HS384,
                None,
                &jsonwebtoken::EncodingKey::from_secret(secret),
                &valid,
            ),
            Err("UnsupportedAlgorithm"),
        ),
        Case {
            name: "HS256 signed with the RSA public key PEM, JWKS-only config",
            keys: Keys::JwksOnly,
            token: hs256(RSA_A_PUBLIC.as_bytes(), &valid),
            expect: Err("UnsupportedAlgorithm"),
        },
        case(
            "HS256 signed with the RSA public key PEM, secret and JWKS config",
            hs256(RSA_A_PUBLIC.as_bytes(), &valid),
            Err("BadSignature"),
        ),
        case(
            "RS256 header over an HMAC signature",
            rs_header_with_hmac_signature,
            Err("BadSignature"),
        ),
        case(
            "ES256 naming an RSA key's kid",
            es256(EC_A, "rsa-a", &valid),
            Err("UnknownKey"),
        ),
        case(
            "RS256 with kid of key A signed by key B",
            rs256(RSA_B, "rsa-a", &valid),
            Err("BadSignature"),
        ),
        case(
            "HS256 signed with another secret",
            hs256(b"another-secret-that-is-long-enough-too", &valid),
            Err("BadSignature"),
        ),
        case("claims changed after signing", tampered, Err("BadSignature")),
        case("no tenant claim", hs(json!({ "tenant": null })), Err("MissingTenant")),
        case(
            "tenant with '/'",
            hs(json!({ "tenant": "acme/other" })),
            Err("InvalidTenant"),
        ),
        case(
            "tenant that is a number",
            hs(json!({ "tenant": 42 })),
            Err("InvalidTenant"),
        ),
        case("no sub", hs(json!({ "sub": null })), Err("MissingSubject")),
        case("garbage", "not-a-token".to_owned(), Err("Malformed")),
        case(
            "two parts",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0".to_owned(),
            Err("Malformed"),
        ),
        case("bad base64", "%%%.%%%.%%%".to_owned(), Err("Malformed")),
        case(
            "bad base64 in the signature",
            format!("{}!!", hs256(secret, &valid)),
            Err("Malformed"),
        ),
    ]
}

/// Every case of the matrix is accepted or refused for exactly the expected reason.
#[tokio::test]
async fn verify_accepts_valid_tokens_and_refuses_each_bad_one_for_its_reason() {
    let server = JwksServer::start(vec![
        jwk(RSA_A, Algorithm::RS256, "rsa-a"),
        jwk(EC_A, Algorithm::ES256, "ec-a"),
    ])
    .await;
    let checks = [
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWKS_URL", server.url.as_str()),
    ];
    let with_secret = authorizer(&[checks.as_slice(), &[("JWT_SECRET", SECRET)]].concat());
    let jwks_only = authorizer(&checks);
    let mut failures = Vec::new();
    for case in cases() {
        let auth = match case.keys {
            Keys::SecretAndJwks => &with_secret,
            Keys::JwksOnly => &jwks_only,
        };
        let got = auth.verify(&case.token).await;
        let got = got.map(|id| (id.tenant.to_string(), id.sub)).map_err(|e| reason(&e));
        let want = case.expect.map(|()| ("acme".to_owned(), "alice".to_owned()));
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    // One fetch, then the cache; the JWKS-only authorizer refused its HS256 token without fetching.
    assert_eq!(server.fetches(), 1);
}

/// A key rotated in at the identity provider is picked up by one refetch for its unknown kid;
/// another unknown kid within the refresh interval is refused without fetching again.
#[tokio::test]
async fn unknown_kid_refetches_the_jwks_at_most_once_per_refresh_interval() {
    let server = JwksServer::start(vec![jwk(RSA_A, Algorithm::RS256, "rsa-a")]).await;
    let auth = authorizer(&[("JWKS_URL", server.url.as_str()), ("JWKS_REFRESH_SECONDS", "1")]);
    let valid = claims(json!({}));

    auth.verify(&rs256(RSA_A, "rsa-a", &valid))
        .await
        .expect("key A is published");
    assert_eq!(server.fetches(), 1);
    let too_soon = auth.verify(&rs256(RSA_B, "rsa-b", &valid)).await;
    assert!(matches!(too_soon, Err(AuthError::UnknownKey { .. })), "{too_soon:?}");
    assert_eq!(server.fetches(), 1, "no refetch within the refresh interval");

    server.publish(vec![
        jwk(RSA_A, Algorithm::RS256, "rsa-a"),
        jwk(RSA_B, Algorithm::RS256, "rsa-b"),
    ]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = auth
        .verify(&rs256(RSA_B, "rsa-b", &valid))
        .await
        .expect("key B after the refetch");
    assert_eq!(rotated.sub, "alice");
    assert_eq!(server.fetches(), 2);

    let unknown = auth.verify(&rs256(RSA_A, "rsa-c", &valid)).await;
    assert!(matches!(unknown, Err(AuthError::UnknownKey { .. })), "{unknown:?}");
    auth.verify(&rs256(RSA_A, "rsa-a", &valid))
        .await
        .expect("key A is still cached");
    assert_eq!(server.fetches(), 2, "second unknown kid and known kids cost no fetch");
}

/// With the JWKS endpoint unreachable, RS256 tokens are refused with a JWKS error.
#[tokio::test]
async fn unreachable_jwks_refuses_tokens_with_a_jwks_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/jwks.json", closed.local_addr().expect("addr"));
    drop(closed);
    let auth = authorizer(&[("JWKS_URL", url.as_str())]);
    let refused = auth.verify(&rs256(RSA_A, "rsa-a", &claims(json!({})))).await;
    assert!(matches!(refused, Err(AuthError::Jwks(_))), "{refused:?}");
}

fn connect_event(edit: impl FnOnce(&mut Value)) -> LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest> {
    let mut event: Value = serde_json::from_str(include_str!("fixtures/authorizer-connect.json")).expect("fixture");
    edit(&mut event);
    LambdaEvent::new(
        serde_json::from_value(event).expect("authorizer event"),
        Context::default(),
    )
}

fn hs256_authorizer() -> Authorizer {
    authorizer(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
    ])
}

fn dev_token() -> String {
    mint_hs256(
        SECRET,
        "acme",
        "alice",
        Duration::from_secs(60),
        Some(ISSUER),
        Some(AUDIENCE),
    )
    .expect("mint")
}

const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123def4/prod/$connect";

fn policy(principal: &str, effect: &str, context: Value) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Action": ["execute-api:Invoke"], "Effect": effect, "Resource": [METHOD_ARN] }],
        },
        "context": context,
        "usageIdentifierKey": null,
    })
}

/// A valid token in `?token=` gets an Allow policy on the method ARN, principal `sub`, context tenant/sub.
#[tokio::test]
async fn handler_allows_a_query_string_token_with_tenant_and_sub_in_the_context() {
    let token = dev_token();
    let event = connect_event(|e| {
        e["queryStringParameters"]["token"] = json!(token);
        e["multiValueQueryStringParameters"]["token"] = json!([token]);
    });
    let response = handler(&hs256_authorizer(), event).await.expect("handler");
    let expected = policy("alice", "Allow", json!({ "tenant": "acme", "sub": "alice" }));
    assert_eq!(serde_json::to_value(&response).expect("json"), expected);
}

/// A browser's `Sec-WebSocket-Protocol: bearer, <jwt>` is accepted like a query-string token.
#[tokio::test]
async fn handler_allows_a_token_offered_as_bearer_subprotocol() {
    let token = dev_token();
    let event = connect_event(|e| e["headers"]["Sec-WebSocket-Protocol"] = json!(format!("bearer, {token}")));
    let response = handler(&hs256_authorizer(), event).await.expect("handler");
    let expected = policy("alice", "Allow", json!({ "tenant": "acme", "sub": "alice" }));
    assert_eq!(serde_json::to_value(&response).expect("json"), expected);
}

/// A valid token offered alone as `Sec-WebSocket-Protocol: <jwt>` (no `bearer`) is refused with
/// the `Unauthorized` error API Gateway answers 401 to, not allowed: the `$connect` answer
/// could not select that protocol and a browser would drop the stored connection.
#[tokio::test]
async fn handler_refuses_a_token_offered_as_a_bare_subprotocol_with_unauthorized() {
    let token = dev_token();
    let event = connect_event(|e| e["headers"]["Sec-WebSocket-Protocol"] = json!(token));
    let error = handler(&hs256_authorizer(), event).await.expect_err("refused");
    assert_eq!(error.to_string(), "Unauthorized");
    assert!(error.downcast_ref::<statecast_authorizer::Unauthorized>().is_some());
}

/// Without any token the answer is a Deny policy, not an error.
#[tokio::test]
async fn handler_denies_a_request_without_a_token() {
    let response = handler(&hs256_authorizer(), connect_event(|_| {}))
        .await
        .expect("handler");
    assert_eq!(
        serde_json::to_value(&response).expect("json"),
        policy("unauthenticated", "Deny", json!({}))
    );
}

/// A bad token (here: expired) also gets a Deny policy, not an error.
#[tokio::test]
async fn handler_denies_an_invalid_token() {
    let expired = hs256(SECRET.as_bytes(), &claims(json!({ "exp": now() - 3600 })));
    let event = connect_event(|e| e["queryStringParameters"]["token"] = json!(expired));
    let response = handler(&hs256_authorizer(), event).await.expect("handler");
    assert_eq!(
        response.policy_document.statement[0].effect,
        aws_lambda_events::iam::IamPolicyEffect::Deny
    );
}

/// The query string wins; else the entry after `bearer`; else a JWT-shaped entry, found as a
/// bare subprotocol (refused, so nothing is selected).
#[test]
fn token_source_prefers_query_then_bearer_then_a_jwt_shaped_protocol() {
    let jwt = "aaa.bbb.ccc";
    let protocols = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-protocol", HeaderValue::from_str(value).expect("header"));
        headers
    };
    let query = HashMap::from([("token".to_owned(), "from-query".to_owned())]);
    let no_query: HashMap<String, String> = HashMap::new();

    let source = token_from_request(&query, &protocols(&format!("bearer, {jwt}")));
    assert_eq!(source, Some(TokenSource::Query("from-query".to_owned())));
    let source = token_from_request(&no_query, &protocols(&format!("Bearer,{jwt}"))).expect("bearer");
    assert_eq!((source.token(), source.subprotocol()), (jwt, Some("bearer")));
    let source = token_from_request(&no_query, &protocols(&format!("chat.v1, {jwt}"))).expect("jwt-shaped");
    assert_eq!(source, TokenSource::BareSubprotocol(jwt.to_owned()));
    assert_eq!(source.subprotocol(), None);
    assert_eq!(token_from_request(&no_query, &protocols("chat.v1, bearer")), None);
    assert_eq!(token_from_request(&no_query, &HeaderMap::new()), None);
    assert!(!format!("{source:?}").contains(jwt), "Debug hides the token");
}

/// Configuration errors are typed (no key, short secret, plain http off loopback, bad number),
/// and the leeway is capped at 300 s.
#[test]
fn config_refuses_unusable_settings_and_caps_the_leeway() {
    let load = |vars: &[(&str, &str)]| {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        AuthConfig::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    };
    assert!(matches!(load(&[]), Err(ConfigError::NoKey)));
    assert!(matches!(load(&[("JWT_SECRET", "")]), Err(ConfigError::NoKey)));
    assert!(matches!(load(&[("JWT_SECRET", "short")]), Err(ConfigError::WeakSecret)));
    let plain = load(&[("JWKS_URL", "http://idp.example.com/jwks.json")]);
    assert!(matches!(plain, Err(ConfigError::InsecureJwksUrl(_))), "{plain:?}");
    assert!(load(&[("JWKS_URL", "http://127.0.0.1:9/jwks.json")]).is_ok());
    let leeway = load(&[("JWT_SECRET", SECRET), ("JWT_LEEWAY_SECONDS", "ten")]);
    assert!(matches!(
        leeway,
        Err(ConfigError::NotSeconds {
            var: "JWT_LEEWAY_SECONDS",
            ..
        })
    ));
    let capped = load(&[("JWT_SECRET", SECRET), ("JWT_LEEWAY_SECONDS", "3600")]).expect("config");
    assert_eq!(capped.leeway, Duration::from_secs(300));
    assert!(!format!("{capped:?}").contains(SECRET), "Debug hides the secret");
}
