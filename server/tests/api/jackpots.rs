use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{database_address, spawn_app, DatabaseProxy};

#[sqlx::test(migrations = "../migrations")]
async fn an_empty_database_gets_three_demo_jackpots_one_per_tier(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/api/jackpots").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let jackpots = body["jackpots"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, &str, u64)> = jackpots
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap(),
                j["tier"].as_str().unwrap(),
                j["value"].as_str().unwrap(),
                j["maxValue"].as_str().unwrap(),
                j["progressBp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Cekpot Mega", "mega", "10000.00", "100000.00", 1_000),
            ("Caspian Treasure", "shared", "1000.00", "10000.00", 1_000),
            ("Lucky Sevens", "local", "100.00", "1000.00", 1_000),
        ]
    );
    assert!(jackpots.iter().all(|j| j["cycle"] == 1 && j["currency"] == "CHIPS" && j["value"] == j["seed"]));
}

#[sqlx::test(migrations = "../migrations")]
async fn demo_jackpots_are_created_only_once(pool: PgPool) {
    let chips = crate::service::CHIPS.parse().unwrap();
    assert!(server::demo::seed_jackpots(&pool, chips).await.unwrap());
    assert!(!server::demo::seed_jackpots(&pool, chips).await.unwrap());
    let count: i64 = sqlx::query_scalar("select count(*) from jackpots").fetch_one(&pool).await.unwrap();
    let cycles: i64 =
        sqlx::query_scalar("select count(*) from jackpot_cycles").fetch_one(&pool).await.unwrap();
    assert_eq!((count, cycles), (3, 3));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_list_filters_by_tier_and_honours_the_limit(pool: PgPool) {
    let app = spawn_app(pool).await;
    let body: Value = app.get("/api/jackpots?tier=shared").await.json().await.unwrap();
    let ids: Vec<&str> =
        body["jackpots"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["caspian-shared"]);

    let body: Value = app.get("/api/jackpots?limit=2").await.json().await.unwrap();
    assert_eq!(body["jackpots"].as_array().unwrap().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_query_parameters_are_refused_with_invalid_query(pool: PgPool) {
    let app = spawn_app(pool).await;
    for query in ["tier=jumbo", "limit=0", "limit=101", "limit=ten", "colour=red"] {
        let response = app.get(&format!("/api/jackpots?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_query", "{query}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_api_answers_503_with_retry_after_while_postgres_is_down(pool: PgPool) {
    let proxy = DatabaseProxy::start(database_address(&pool)).await;
    let app = spawn_app(proxy.pool_like(&pool)).await;
    assert_eq!(app.get("/api/jackpots").await.status(), 200);

    proxy.stop();
    // The list is read at most once per http.public_cache_ms (1 s).
    let down =
        crate::helpers::eventually(5, || async { app.get("/api/jackpots").await.status() == 503 }).await;
    assert!(down, "503 once the kept list is older than its period");
    let response = app.get("/api/jackpots").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "service_unavailable");
}
