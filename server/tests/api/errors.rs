//! Malformed requests get a 4xx with a stable code, never a 500. The probe
//! routes sit behind exactly the middleware stack the server uses.

use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use server::http::extract::ApiJson;
use server::http::with_middleware;
use server::startup::serve;
use sqlx::PgPool;

use crate::helpers::{spawn_app, test_settings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    name: String,
    count: u32,
}

async fn spawn_probe() -> String {
    let mut settings = test_settings();
    settings.http.body_limit_bytes = 1024;
    settings.http.request_timeout_ms = 300;
    let routes = Router::new()
        .route(
            "/probe",
            post(|ApiJson(probe): ApiJson<Probe>| async move {
                Json(json!({ "name": probe.name, "count": probe.count }))
            }),
        )
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
        .route("/panic", get(panicking_handler));
    let router = with_middleware(routes, &settings.http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        router,
        std::future::pending(),
        Duration::from_secs(1),
        Duration::from_secs(10),
    ));
    address
}

async fn panicking_handler() -> &'static str {
    panic!("boom: secret detail")
}

async fn post_probe(address: &str, content_type: Option<&str>, body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{address}/probe")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn each_kind_of_bad_body_gets_its_own_code() {
    let address = spawn_probe().await;
    let json = Some("application/json");
    let table = [
        (json, r#"{"name": "ok", "count": 2}"#.to_owned(), 200, None),
        (json, r#"{"name": "x", "count": 1,"#.to_owned(), 400, Some("malformed_json")),
        (json, "not json at all".to_owned(), 400, Some("malformed_json")),
        (json, r#"{"name": "x"}"#.to_owned(), 422, Some("invalid_body")),
        (json, r#"{"name": "x", "count": 1, "extra": true}"#.to_owned(), 422, Some("invalid_body")),
        (json, r#"{"name": "x", "count": -1}"#.to_owned(), 422, Some("invalid_body")),
        (json, r#"["name", "count"]"#.to_owned(), 422, Some("invalid_body")),
        (None, r#"{"name": "x", "count": 1}"#.to_owned(), 415, Some("unsupported_media_type")),
        (Some("text/plain"), r#"{"name": "x", "count": 1}"#.to_owned(), 415, Some("unsupported_media_type")),
        (json, format!(r#"{{"name": "{}", "count": 1}}"#, "x".repeat(2_000)), 413, Some("payload_too_large")),
    ];
    for (content_type, body, status, code) in table {
        let (actual_status, answer) = post_probe(&address, content_type, body.clone()).await;
        assert_eq!(actual_status, status, "{body:.60}");
        match code {
            Some(code) => {
                assert_eq!(answer["code"], code, "{body:.60}");
                assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
            None => assert_eq!(answer, json!({ "name": "ok", "count": 2 })),
        }
    }
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_408_request_timeout() {
    let address = spawn_probe().await;
    let response = reqwest::get(format!("{address}/slow")).await.unwrap();
    assert_eq!(response.status(), 408);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "request_timeout");
}

#[tokio::test]
async fn a_panic_becomes_an_opaque_500_that_leaks_nothing() {
    let address = spawn_probe().await;
    let response = reqwest::get(format!("{address}/panic")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "internal");
    assert!(!body["message"].as_str().unwrap().contains("secret"));
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_api_paths_and_wrong_methods_answer_in_json(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/api/no-such-thing").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "not_found");

    for path in ["/api/jackpots", "/healthz"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "method_not_allowed", "{path}");
    }
}
