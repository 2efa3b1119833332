//! The engine under concurrent load: two instances on one database, and a
//! server killed mid-flight.

use std::collections::HashMap;

use domain::money::Amount;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::helpers::{free_port, service_client, spawn_app, start_server_binary, wait_until_serving};
use crate::service::{assert_books_balance, create_jackpot};

const CLIENTS: usize = 32;
const CONTRIBUTIONS: usize = 10_000;

fn body(n: usize) -> Value {
    json!({ "gameId": "test-slot", "playerId": format!("player-{}", n % 97), "betAmount": "1.00", "currency": "CHIPS" })
}

#[sqlx::test(migrations = "../migrations")]
async fn ten_thousand_contributions_from_32_clients_on_two_instances_add_up_exactly(pool: PgPool) {
    let first = spawn_app(pool.clone()).await; // seeds the demo jackpots into the empty database
    create_jackpot(&pool, crate::service::STORM).await;
    let second_pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let instances = [first, spawn_app(second_pool).await];
    let targets = ["cekpot-mega", "storm"];

    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let clients: Vec<_> = instances.iter().map(|app| app.service("test-game")).collect();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in (worker..CONTRIBUTIONS).step_by(CLIENTS) {
                let jackpot = targets[n % 2];
                let path = format!("/jackpot/{jackpot}/contribute");
                let response =
                    clients[n % clients.len()].post(&path, &body(n), &format!("load-{n}")).await.unwrap();
                assert_eq!(response.status(), 200, "contribution {n}");
                answers.push(response.json::<Value>().await.unwrap());
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert_eq!(answers.len(), CONTRIBUTIONS);

    let mut pool_shares: HashMap<&str, i64> = HashMap::new();
    let mut awarded: i64 = 0;
    for answer in &answers {
        let share: Amount = answer["poolShare"].as_str().unwrap().parse().unwrap();
        *pool_shares.entry(answer["jackpotId"].as_str().unwrap()).or_default() += share.micros();
        if let Some(amount) = answer["award"]["awardedAmount"].as_str() {
            awarded += amount.parse::<Amount>().unwrap().micros();
        }
    }
    let mega: i64 =
        sqlx::query_scalar("select value_micros from jackpot_cycles where jackpot_id = 'cekpot-mega'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(mega, 10_000_000_000 + pool_shares["cekpot-mega"], "mega = seed + Σ pool shares, exactly");

    // The storm pool dropped many times: every cycle's seed plus its shares is
    // either paid out or still in the pool.
    let (seeds, open_value, awards): (i64, i64, i64) = sqlx::query_as(
        "select (select sum(seed_micros) from jackpot_cycles where jackpot_id = 'storm')::bigint,
                (select value_micros from jackpot_cycles where jackpot_id = 'storm' and closed_at is null),
                (select count(*) from jackpot_awards where jackpot_id = 'storm')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(awards > 10, "the storm pool dropped {awards} times");
    assert_eq!(seeds + pool_shares["storm"], awarded + open_value);
    let awarded_in_db: i64 =
        sqlx::query_scalar("select sum(awarded_amount_micros)::bigint from jackpot_awards")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(awarded_in_db, awarded, "every award was answered to the contribution that won it");

    let report = crate::helpers::reconcile(&pool).await;
    assert!(report.checks > 100, "{} checks", report.checks);
    assert_eq!(report.mismatches, vec![], "reconciliation finds nothing");
    assert_eq!(report.mismatch_ratio_ppm, 0);
    assert_books_balance(&pool).await;
    crate::audit::assert_trail_covers_every_contribution(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_server_killed_under_load_loses_nothing_it_acknowledged_and_retries_apply_once(pool: PgPool) {
    let port = free_port();
    let mut server = start_server_binary(&pool, port);
    wait_until_serving(port).await;

    let client = service_client(&format!("http://127.0.0.1:{port}"), "test-game");
    let keys: Vec<String> = (0..4_000).map(|n| format!("kill-{n}")).collect();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in (worker..keys.len()).step_by(16) {
                let sent = client.post("/jackpot/cekpot-mega/contribute", &body(n), &keys[n]).await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.push((n, response.json::<Value>().await.unwrap()));
                    }
                    _ => break, // the server is gone
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "the server was under load ({} acknowledged)", acknowledged.len());
    assert!(acknowledged.len() < keys.len(), "and was killed before the end");

    let stored: Vec<String> = sqlx::query_scalar("select idempotency_key from jackpot_contributions")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (n, _) in &acknowledged {
        assert!(stored.contains(&keys[*n]), "acknowledged contribution {n} is stored");
    }

    // A restarted server; the clients retry everything with the same keys.
    let port = free_port();
    let mut server = start_server_binary(&pool, port);
    wait_until_serving(port).await;
    let client = service_client(&format!("http://127.0.0.1:{port}"), "test-game");
    let mut replays = HashMap::new();
    for (n, key) in keys.iter().enumerate() {
        let response = client.post("/jackpot/cekpot-mega/contribute", &body(n), key).await.unwrap();
        assert_eq!(response.status(), 200);
        replays.insert(n, response.json::<Value>().await.unwrap());
    }
    for (n, original) in &acknowledged {
        assert_eq!(&replays[n], original, "a retry of acknowledged contribution {n} replays its answer");
    }
    let (count, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct idempotency_key) from jackpot_contributions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (count, distinct),
        (keys.len() as i64, keys.len() as i64),
        "each contribution applied exactly once"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let report = crate::helpers::reconcile(&pool).await;
    assert_eq!(report.mismatches, vec![]);
}
