//! The signed service API: each refusal with its code, the whole route × role
//! matrix, and a replay refused by a second instance (nonces in Redis).

use domain::signing::{KEY_ID_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{redis_url, spawn_app, spawn_app_with, TestApp, TEST_KEYS};
use crate::service::{bet, provider_jackpot};

/// The idempotency key [`raw`] sends with a body.
const RAW_KEY: &str = "raw-1";

/// Sends `method path` with the given headers and body, as they are.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json").header("idempotency-key", RAW_KEY);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Request headers as (name, value).
type Headers = Vec<(&'static str, String)>;

fn signer(key_id: &str) -> cekpot_client::Signer {
    cekpot_client::Signer::new(key_id, crate::helpers::test_secret(key_id).into_bytes())
}

#[sqlx::test(migrations = "../migrations")]
async fn every_kind_of_bad_signature_is_refused_with_its_own_code(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let path = "/jackpot/cekpot-mega/contribute";
    let body = serde_json::to_vec(&bet("test-slot", "1")).unwrap();
    let now = cekpot_client::unix_now();
    let good =
        |nonce: &str| signer("test-game").headers_at("POST", path, RAW_KEY, &body, now, nonce).to_vec();
    let with = |mut headers: Headers, name: &str, value: &str| {
        headers.iter_mut().filter(|(n, _)| *n == name).for_each(|(_, v)| *v = value.to_owned());
        headers
    };
    let without =
        |headers: Headers, name: &str| headers.into_iter().filter(|(n, _)| *n != name).collect::<Vec<_>>();
    let stale =
        signer("test-game").headers_at("POST", path, RAW_KEY, &body, now - 301, "nonce-stale-00001").to_vec();
    let future =
        signer("test-game").headers_at("POST", path, RAW_KEY, &body, now + 301, "nonce-future-0001").to_vec();
    let wrong_secret = cekpot_client::Signer::new("test-game", b"guess".to_vec())
        .headers_at("POST", path, RAW_KEY, &body, now, "nonce-wrong-00001")
        .to_vec();
    let cases: Vec<(&str, Headers, &[u8], &str)> = vec![
        ("no headers", vec![], &body, "missing_signature"),
        ("no signature", without(good("nonce-case-000001"), SIGNATURE_HEADER), &body, "missing_signature"),
        ("no nonce", without(good("nonce-case-000002"), NONCE_HEADER), &body, "missing_signature"),
        ("short nonce", good("short"), &body, "missing_signature"),
        (
            "timestamp not a number",
            with(good("nonce-case-000003"), TIMESTAMP_HEADER, "soon"),
            &body,
            "missing_signature",
        ),
        // One answer for an unknown key and a bad signature: key ids cannot be enumerated.
        ("unknown key", with(good("nonce-case-000004"), KEY_ID_HEADER, "nobody"), &body, "bad_signature"),
        ("301 s old", stale, &body, "stale_timestamp"),
        ("301 s ahead", future, &body, "stale_timestamp"),
        ("wrong secret", wrong_secret, &body, "bad_signature"),
        (
            "body changed",
            good("nonce-case-000005"),
            br#"{"gameId":"test-slot","playerId":"player-1","betAmount":"100","currency":"CHIPS"}"#,
            "bad_signature",
        ),
        (
            "signature changed",
            with(good("nonce-case-000006"), SIGNATURE_HEADER, &"0".repeat(64)),
            &body,
            "bad_signature",
        ),
        // Signed for another idempotency key than the one sent: a retry
        // must not be turned into a second contribution on the way.
        (
            "idempotency key changed",
            signer("test-game").headers_at("POST", path, "raw-2", &body, now, "nonce-case-000007").to_vec(),
            &body,
            "bad_signature",
        ),
    ];
    for (case, headers, sent, code) in cases {
        let (status, answer) = raw(&app, Method::POST, path, &headers, sent).await;
        assert_eq!((status, answer["code"].as_str()), (401, Some(code)), "{case}: {answer}");
    }
    assert_eq!(crate::service::scalar(&pool, "select count(*) from jackpot_contributions").await, 0);

    // The same request, signed well, goes through once; its replay does not.
    let headers = good("nonce-accepted-01");
    let (status, answer) = raw(&app, Method::POST, path, &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = raw(&app, Method::POST, path, &headers, &body).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("replayed_nonce")));
    assert_eq!(crate::service::scalar(&pool, "select count(*) from jackpot_contributions").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_route_for_every_role(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    // Allowed for [admin, game_service, readonly], the order of TEST_KEYS.
    let routes: [(Method, &str, Option<Value>, [bool; 3]); 7] = [
        (Method::GET, "/jackpots", None, [true, true, true]),
        (Method::GET, "/jackpot/provider-pot", None, [true, true, true]),
        (Method::POST, "/jackpot/provider-pot/contribute", Some(bet("any-game", "1")), [true, true, false]),
        (
            Method::POST,
            "/jackpot/provider-pot/award",
            Some(json!({ "playerId": "p", "sessionId": "s", "cycle": 99 })),
            [true, true, false],
        ),
        (Method::POST, "/admin/reconciliations", None, [true, false, false]),
        (
            Method::POST,
            "/admin/awards/999/rollback",
            Some(json!({ "reason": "matrix" })),
            [true, false, false],
        ),
        (
            Method::PATCH,
            "/admin/jackpots/provider-pot",
            Some(json!({ "name": "Renamed", "reason": "matrix" })),
            [true, false, false],
        ),
    ];
    for (method, path, body, allowed) in routes {
        for ((key_id, role), allowed) in TEST_KEYS.iter().zip(allowed) {
            let body = body.as_ref().map(|b| serde_json::to_vec(b).unwrap());
            let key = format!("matrix-{key_id}-{path}");
            let response = app.service(key_id).send(method.clone(), path, body, Some(&key)).await.unwrap();
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap();
            if allowed {
                assert!(status != 401 && status != 403, "{role:?} {method} {path}: {status} {answer}");
            } else {
                assert_eq!(
                    (status, answer["code"].as_str()),
                    (403, Some("forbidden")),
                    "{role:?} {method} {path}"
                );
            }
        }
    }
    // The public API stays unsigned.
    assert_eq!(app.get("/api/jackpots").await.status(), 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_replayed_to_a_second_instance_is_refused(pool: PgPool) {
    let with_redis = |settings: &mut server::config::Settings| settings.redis.url = Some(redis_url().into());
    let first = spawn_app_with(pool.clone(), with_redis).await;
    let second = spawn_app_with(pool.clone(), with_redis).await;
    let path = "/jackpot/cekpot-mega/contribute";
    let body = serde_json::to_vec(&bet("test-slot", "1")).unwrap();
    let nonce = cekpot_client::fresh_nonce();
    let headers = signer("test-game")
        .headers_at("POST", path, RAW_KEY, &body, cekpot_client::unix_now(), &nonce)
        .to_vec();
    let (status, answer) = raw(&first, Method::POST, path, &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = raw(&second, Method::POST, path, &headers, &body).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("replayed_nonce")), "{answer}");
    assert_eq!(crate::service::scalar(&pool, "select count(*) from jackpot_contributions").await, 1);
}
