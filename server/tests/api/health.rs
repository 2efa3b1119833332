use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{database_address, eventually, redis_url, spawn_app, spawn_app_with, DatabaseProxy};

#[sqlx::test(migrations = "../migrations")]
async fn healthz_answers_while_the_process_runs(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");
}

#[sqlx::test(migrations = "../migrations")]
async fn readyz_is_200_when_postgres_and_redis_answer(pool: PgPool) {
    let app = spawn_app_with(pool, |settings| settings.redis.url = Some(redis_url().into())).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["redis"], "ok");
}

#[sqlx::test(migrations = "../migrations")]
async fn readyz_without_redis_configured_needs_only_postgres(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["redis"], "not_configured");
}

#[sqlx::test(migrations = "../migrations")]
async fn readyz_turns_503_while_postgres_is_down_and_recovers_when_it_returns(pool: PgPool) {
    let proxy = DatabaseProxy::start(database_address(&pool)).await;
    let app = spawn_app(proxy.pool_like(&pool)).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.stop();
    // Readiness is checked at most once per http.public_cache_ms (1 s).
    let down = eventually(5, || async { app.get("/readyz").await.status() == 503 }).await;
    assert!(down, "readiness fails once PostgreSQL is down");
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.unwrap()["postgres"], "down");
    assert_eq!(app.get("/healthz").await.status(), 200, "the process stays up");

    proxy.resume();
    let recovered = eventually(10, || async { app.get("/readyz").await.status() == 200 }).await;
    assert!(recovered, "readiness returns once PostgreSQL is back");
}

#[sqlx::test(migrations = "../migrations")]
async fn every_response_carries_a_request_id_and_echoes_the_callers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let echoed =
        app.client.get(app.url("/healthz")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
}
