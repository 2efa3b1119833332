//! Players: the wallet, spins, provably-fair seeds and limits, through the
//! HTTP API against real PostgreSQL.

use domain::jackpot::TriggerMode;
use domain::telegram::sign;
use serde_json::{json, Value};
use server::config::Settings;
use sqlx::PgPool;

use crate::helpers::{reconcile, spawn_app_with, TestApp};
use crate::service::{assert_books_balance, create_jackpot, scalar, JackpotSpec};

pub(crate) const BOT_TOKEN: &str = "7000000002:AAcekpot-players_test_token";

/// A player's session against a test server.
pub(crate) struct Player {
    pub token: String,
    pub id: i64,
}

/// A server with a bot token, no minimum interval (tests that check it set
/// one), no limit on a player's spins in flight, and the given changes.
pub(crate) async fn app_with(pool: &PgPool, customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(pool.clone(), |s| {
        s.telegram.bot_token = Some(BOT_TOKEN.to_owned().into());
        s.slot.spin_interval_ms = 0;
        // The tests of what the database guarantees under concurrent spins of
        // one player send them all at once; the door's limit is tested apart.
        s.players.spins_in_flight_max = 10_000;
        customize(s);
    })
    .await
}

pub(crate) async fn sign_in(app: &TestApp, telegram_id: i64) -> Player {
    let user = json!({ "id": telegram_id, "first_name": "Player", "language_code": "en" }).to_string();
    let auth_date = chrono::Utc::now().timestamp().to_string();
    let query_id = crate::auth::launch_id();
    let init_data = sign(&[("query_id", &query_id), ("user", &user), ("auth_date", &auth_date)], BOT_TOKEN);
    let (status, body) = crate::auth::sign_in(app, &init_data).await;
    assert_eq!(status, 200, "{body}");
    Player { token: body["token"].as_str().unwrap().to_owned(), id: body["player"]["id"].as_i64().unwrap() }
}

pub(crate) async fn get(app: &TestApp, player: &Player, path: &str) -> (u16, Value) {
    let response = app.client.get(app.url(path)).bearer_auth(&player.token).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn send(
    app: &TestApp,
    player: &Player,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&player.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub(crate) async fn spin(app: &TestApp, player: &Player, key: &str, bet: &str) -> (u16, Value) {
    spin_with(&app.client, &app.url("/api/spin"), &player.token, key, bet).await
}

/// Owns nothing borrowed from a test, so it can be spawned.
async fn spin_with(client: &reqwest::Client, url: &str, token: &str, key: &str, bet: &str) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({ "betAmount": bet }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub(crate) fn micros(value: &Value) -> i64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is an amount"))
        .parse::<domain::money::Amount>()
        .unwrap()
        .micros()
}

/// A slot definition like the shipped one whose paytable pays nothing, so a
/// test knows every balance in advance.
fn slot_paying_nothing() -> std::path::PathBuf {
    let text: String = server::game::BUILT_IN
        .lines()
        .map(|line| if line.starts_with("pays = ") { "pays = [0, 0, 0]" } else { line })
        .collect::<Vec<_>>()
        .join("\n");
    let path = std::env::temp_dir().join(format!("cekpot-slot-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_player_gets_demo_credits_from_the_house_once(pool: PgPool) {
    let app = app_with(&pool, |s| s.players.demo_credit_micros = 250_000_000).await;
    let house = "select balance_micros from ledger_accounts where kind = 'house'";
    let house_before = scalar(&pool, house).await;
    let player = sign_in(&app, 1001).await;
    let (status, wallet) = get(&app, &player, "/api/wallet").await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!(wallet, json!({ "currency": "CHIPS", "balance": "250.00" }));
    // Signing in again does not credit again.
    let again = sign_in(&app, 1001).await;
    assert_eq!(again.id, player.id);
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "250.00");
    let (_, history) = get(&app, &player, "/api/wallet/history").await;
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["kind"], "demo_credit");
    assert_eq!(entries[0]["amount"], "250.00");
    assert_eq!(entries[0]["reference"], format!("player:{}", player.id));
    assert_eq!(scalar(&pool, house).await - house_before, -250_000_000, "the house paid it");
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_spin_debits_the_bet_contributes_and_credits_the_win_in_one_record(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1002).await;
    let (status, receipt) = spin(&app, &player, "spin-1", "1.00").await;
    assert_eq!(status, 200, "{receipt}");
    let (bet, win, jackpot_win) =
        (micros(&receipt["betAmount"]), micros(&receipt["win"]), micros(&receipt["jackpotWin"]));
    assert_eq!(bet, 1_000_000);
    assert_eq!(micros(&receipt["net"]), win + jackpot_win - bet);
    assert_eq!(
        receipt["isWin"],
        json!(win + jackpot_win > bet),
        "a return at or below the bet is never a win"
    );
    assert_eq!(micros(&receipt["balance"]), 1_000_000_000 - bet + win + jackpot_win);
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], receipt["balance"]);
    // Every line win is its multiple of the line bet (bet / 10 lines).
    let line_total: i64 = receipt["lineWins"].as_array().unwrap().iter().map(|w| micros(&w["amount"])).sum();
    assert_eq!(line_total, win);
    assert_eq!(receipt["reels"].as_array().unwrap().len(), 5);
    assert!(receipt["reels"].as_array().unwrap().iter().all(|reel| reel.as_array().unwrap().len() == 3));
    // 1.00 feeds all three demo jackpots: 0.2 % + 0.15 % + 0.15 %.
    let contributions: Vec<(String, i64)> = receipt["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["jackpotId"].as_str().unwrap().to_owned(), micros(&c["amount"])))
        .collect();
    assert_eq!(
        contributions,
        vec![("caspian-shared".into(), 1_500), ("cekpot-mega".into(), 1_500), ("lucky-sevens".into(), 2_000)]
    );
    let spin_id = receipt["spinId"].as_i64().unwrap();
    assert_eq!(
        scalar(
            &pool,
            &format!("select count(*) from jackpot_contributions where idempotency_key = 'spin:{spin_id}'")
        )
        .await,
        3
    );
    assert_eq!(
        scalar(&pool, &format!("select count(*) from ledger_transfers where reference = 'spin:{spin_id}'"))
            .await,
        if win > 0 { 2 } else { 1 },
        "the bet, and the win when there is one"
    );
    assert_eq!(receipt["fairness"]["nonce"], 0);
    assert_books_balance(&pool).await;
    assert!(reconcile(&pool).await.mismatches.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn two_hundred_concurrent_spins_with_a_balance_for_one_hundred_accept_exactly_one_hundred(
    pool: PgPool,
) {
    let definition = slot_paying_nothing();
    let app = app_with(&pool, |s| {
        s.slot.definition = Some(definition.clone());
        s.players.demo_credit_micros = 100_000_000;
        // No jackpots: nothing this player could win back.
        s.demo.seed_jackpots = false;
    })
    .await;
    let player = sign_in(&app, 1003).await;
    let url = app.url("/api/spin");
    let spins = (0..200).map(|i| {
        let (client, url, token) = (app.client.clone(), url.clone(), player.token.clone());
        tokio::spawn(async move { spin_with(&client, &url, &token, &format!("c-{i}"), "1.00").await })
    });
    let mut accepted = 0;
    let mut refused = 0;
    for spin in spins {
        let (status, body) = spin.await.unwrap();
        match status {
            200 => accepted += 1,
            409 => {
                assert_eq!(body["code"], "insufficient_funds", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((accepted, refused), (100, 100));
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "0.00");
    assert_eq!(scalar(&pool, "select count(*) from spins").await, 100);
    assert_eq!(scalar(&pool, "select min(balance_after_micros) from spins").await, 0);
    assert_eq!(scalar(&pool, "select count(distinct nonce) from spins").await, 100, "one nonce per spin");
    assert_books_balance(&pool).await;
    std::fs::remove_file(definition).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_spins_of_one_player_stop_exactly_at_the_daily_loss_limit(pool: PgPool) {
    // Small batches, two in flight: batches of one player's spins wait for
    // each other's commit, and each must then count the day's losses and use
    // the nonces the one before committed.
    let definition = slot_paying_nothing();
    let app = app_with(&pool, |s| {
        s.slot.definition = Some(definition.clone());
        s.demo.seed_jackpots = false;
        s.engine.batch_size_max = 4;
    })
    .await;
    let player = sign_in(&app, 1004).await;
    let (status, limits) =
        send(&app, &player, reqwest::Method::PUT, "/api/limits", json!({ "dailyLossLimit": "10.00" })).await;
    assert_eq!(status, 200, "{limits}");
    let url = app.url("/api/spin");
    let spins = (0..60).map(|i| {
        let (client, url, token) = (app.client.clone(), url.clone(), player.token.clone());
        tokio::spawn(async move { spin_with(&client, &url, &token, &format!("loss-{i}"), "1.00").await })
    });
    let mut accepted = 0;
    for spin in spins {
        let (status, body) = spin.await.unwrap();
        match status {
            200 => accepted += 1,
            403 => assert_eq!(body["code"], "loss_limit_reached", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted, 10);
    assert_eq!(scalar(&pool, "select bets_micros from player_days").await, 10_000_000);
    assert_eq!(scalar(&pool, "select count(distinct nonce) from spins").await, 10, "one nonce per spin");
    std::fs::remove_file(definition).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retried_spin_gets_its_first_answer_and_is_paid_once(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1004).await;
    let (status, first) = spin(&app, &player, "same-key", "2.00").await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = spin(&app, &player, "same-key", "2.00").await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], first["balance"]);
    let (status, other) = spin(&app, &player, "same-key", "3.00").await;
    assert_eq!((status, other["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(scalar(&pool, "select count(*) from spins").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_spin_stored_before_receipts_had_a_version_still_answers_its_retry(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1005).await;
    let (status, first) = spin(&app, &player, "old-key", "2.00").await;
    assert_eq!(status, 200, "{first}");
    let version = scalar(&pool, "select (receipt->>'version')::bigint from spins").await;
    assert_eq!(version, 1, "receipts are stored with their version");
    // As an earlier build stored it: the answer's body itself, no version.
    sqlx::query("update spins set receipt = $1").bind(&first).execute(&pool).await.unwrap();
    let (status, again) = spin(&app, &player, "old-key", "2.00").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(scalar(&pool, "select count(*) from spins").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_spins_and_bad_tokens_are_refused_with_their_codes(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1005).await;
    for (bet, status, code) in [
        ("0", 422, "bet_not_positive"),
        ("-1.00", 422, "bet_not_positive"),
        ("0.05", 422, "below_minimum_bet"),
        ("50.01", 422, "bet_too_large"),
        ("0.105", 422, "bet_step_mismatch"),
    ] {
        let (got, body) = spin(&app, &player, &format!("bad-{bet}"), bet).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "bet {bet}: {body}");
    }
    let response =
        app.client.post(app.url("/api/spin")).json(&json!({ "betAmount": "1.00" })).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "token_missing");
    let forged = Player { token: "eyJhbGciOiJIUzI1NiJ9.e30.forged".into(), id: player.id };
    let (status, body) = get(&app, &forged, "/api/wallet").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_invalid")));
    let (status, body) =
        send(&app, &player, reqwest::Method::POST, "/api/spin", json!({ "betAmount": "1.00" })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("missing_idempotency_key")));
    let response = app
        .client
        .post(app.url("/api/spin"))
        .bearer_auth(&player.token)
        .header("idempotency-key", "auto")
        .json(&json!({ "betAmount": "1.00", "autoplay": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "there is no autoplay");
    for query in ["limit=0", "limit=101", "before=0", "limit=x"] {
        let (status, body) = get(&app, &player, &format!("/api/wallet/history?{query}")).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_query")), "{query}");
    }
    assert_eq!(scalar(&pool, "select count(*) from spins").await, 0, "nothing was written");
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "1000.00");
}

#[sqlx::test(migrations = "../migrations")]
async fn spins_closer_than_the_minimum_interval_are_refused(pool: PgPool) {
    let app = app_with(&pool, |s| s.slot.spin_interval_ms = 2_500).await;
    let player = sign_in(&app, 1006).await;
    assert_eq!(spin(&app, &player, "a", "1.00").await.0, 200);
    let response = app
        .client
        .post(app.url("/api/spin"))
        .bearer_auth(&player.token)
        .header("idempotency-key", "b")
        .json(&json!({ "betAmount": "1.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "spin_too_soon");
    let wait = body["details"]["retryAfterMs"].as_i64().unwrap();
    assert!(0 < wait && wait <= 2_500, "{wait}");
    tokio::time::sleep(std::time::Duration::from_millis(wait as u64 + 50)).await;
    assert_eq!(spin(&app, &player, "b", "1.00").await.0, 200, "allowed once the interval has passed");
}

#[sqlx::test(migrations = "../migrations")]
async fn loss_limits_tighten_at_once_and_loosen_only_after_the_cooling_off(pool: PgPool) {
    let definition = slot_paying_nothing();
    let app = app_with(&pool, |s| s.slot.definition = Some(definition.clone())).await;
    let player = sign_in(&app, 1007).await;
    let put = |body: Value| send(&app, &player, reqwest::Method::PUT, "/api/limits", body);
    let (status, limits) = put(json!({ "dailyLossLimit": "2.00" })).await;
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["dailyLossLimit"], "2.00");
    assert_eq!(spin(&app, &player, "l1", "1.00").await.0, 200);
    assert_eq!(spin(&app, &player, "l2", "1.00").await.0, 200);
    let (status, body) = spin(&app, &player, "l3", "1.00").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("loss_limit_reached")), "{body}");
    assert_eq!(body["details"]["lostToday"], "2.00");
    // Raising waits for the cooling-off (a day by default): still refused.
    let (_, limits) = put(json!({ "dailyLossLimit": "10.00" })).await;
    assert_eq!(limits["dailyLossLimit"], "2.00");
    assert_eq!(limits["pending"]["dailyLossLimit"], "10.00");
    assert_eq!(limits["lostToday"], "2.00");
    assert_eq!(spin(&app, &player, "l4", "1.00").await.0, 403);
    // Lowering is immediate, and lowers the pending raise with it (which
    // then changes nothing, so it is gone).
    let (_, limits) = put(json!({ "dailyLossLimit": "1.00" })).await;
    assert_eq!(limits["dailyLossLimit"], "1.00");
    assert_eq!(limits["pending"], Value::Null);
    let (status, body) = put(json!({ "dailyLossLimit": "0" })).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_limit")));
    // Removing waits, like raising.
    let (_, limits) = put(json!({ "dailyLossLimit": null })).await;
    assert_eq!(limits["dailyLossLimit"], "1.00", "removal waits");
    assert_eq!(limits["pending"]["dailyLossLimit"], Value::Null);
    assert!(limits["pending"]["from"].is_string(), "{limits}");
    std::fs::remove_file(definition).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn self_exclusion_locks_the_player_out_and_cannot_be_shortened(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1008).await;
    let put = |body: Value| send(&app, &player, reqwest::Method::PUT, "/api/limits", body);
    let (status, limits) = put(json!({ "selfExcludeDays": 30 })).await;
    assert_eq!(status, 200, "{limits}");
    let until = limits["selfExcludedUntil"].as_str().unwrap().to_owned();
    let (status, body) = spin(&app, &player, "x", "1.00").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("self_excluded")));
    assert_eq!(body["details"]["until"], until);
    let (_, limits) = put(json!({ "selfExcludeDays": 1 })).await;
    assert_eq!(limits["selfExcludedUntil"], until, "a shorter exclusion does not replace a longer one");
    let (status, body) = put(json!({ "selfExcludeDays": 0 })).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_limit")));
    assert_eq!(scalar(&pool, "select count(*) from spins").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn machine_like_pace_flags_the_player_for_review(pool: PgPool) {
    let app = app_with(&pool, |s| {
        s.players.velocity_steady_spins = 5;
        // Wide enough that a loaded test machine's jitter still counts as steady.
        s.players.velocity_tolerance_ms = 1_000;
    })
    .await;
    let player = sign_in(&app, 1009).await;
    for i in 0..8 {
        assert_eq!(spin(&app, &player, &format!("v{i}"), "0.10").await.0, 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let flags: Vec<(String, Value)> =
        sqlx::query_as("select reason, detail from player_flags where player_id = $1")
            .bind(player.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].0, "steady_intervals");
    let interval = flags[0].1["intervalMs"].as_i64().unwrap();
    assert!((100..1_100).contains(&interval), "{interval}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_thousand_spins_recompute_from_their_revealed_seeds(pool: PgPool) {
    let app = app_with(&pool, |s| s.players.demo_credit_micros = 10_000_000_000).await;
    let player = sign_in(&app, 1010).await;
    let (_, before) = get(&app, &player, "/api/fairness").await;
    let shown_hash = before["serverSeedHash"].as_str().unwrap().to_owned();
    let (status, rotated) = send(
        &app,
        &player,
        reqwest::Method::POST,
        "/api/fairness/rotate",
        json!({ "clientSeed": "my-lucky_seed" }),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["revealed"]["serverSeedHash"], shown_hash.as_str());
    assert_eq!(rotated["clientSeed"], "my-lucky_seed");
    let url = app.url("/api/spin");
    let mut receipts = Vec::new();
    for round in 0..20 {
        let spins: Vec<_> = (0..50)
            .map(|i| {
                let (client, url, token) = (app.client.clone(), url.clone(), player.token.clone());
                tokio::spawn(async move {
                    spin_with(&client, &url, &token, &format!("f-{round}-{i}"), "0.10").await
                })
            })
            .collect();
        for spin in spins {
            let (status, receipt) = spin.await.unwrap();
            assert_eq!(status, 200, "{receipt}");
            receipts.push(receipt);
        }
    }
    let spin_id = receipts[0]["spinId"].as_i64().unwrap();
    let (status, body) = get(&app, &player, &format!("/api/fairness/verify?spin={spin_id}")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("seed_not_revealed")));
    let (_, revealed) = send(&app, &player, reqwest::Method::POST, "/api/fairness/rotate", json!({})).await;
    let server_seed = revealed["revealed"]["serverSeed"].as_str().unwrap().to_owned();
    assert_eq!(revealed["revealed"]["spins"], 1000);
    assert_eq!(domain::seeds::server_seed_hash(&server_seed), rotated["serverSeedHash"].as_str().unwrap());
    let slot = server::game::definition(None).unwrap();
    let mut nonces: Vec<i64> = Vec::new();
    for receipt in &receipts {
        let fairness = &receipt["fairness"];
        assert_eq!(fairness["serverSeedHash"], rotated["serverSeedHash"]);
        assert_eq!(fairness["clientSeed"], "my-lucky_seed");
        let nonce = fairness["nonce"].as_i64().unwrap();
        nonces.push(nonce);
        let stops = domain::seeds::stops(&server_seed, "my-lucky_seed", nonce as u64, slot.reel_lengths());
        let outcome = slot.outcome(stops);
        assert_eq!(fairness["stops"], json!(stops.to_vec()));
        let reels: Vec<Vec<&str>> = outcome
            .window
            .iter()
            .map(|reel| reel.iter().map(|&s| slot.symbols[s as usize].id.as_str()).collect())
            .collect();
        assert_eq!(receipt["reels"], json!(reels));
        let line_bet = micros(&receipt["betAmount"]) / 10;
        assert_eq!(micros(&receipt["win"]), line_bet * outcome.line_bets_won as i64);
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..1000).collect::<Vec<i64>>(), "the nonce counts the spins");
    let (status, check) = get(&app, &player, &format!("/api/fairness/verify?spin={spin_id}")).await;
    assert_eq!(status, 200, "{check}");
    assert_eq!((check["verified"].as_bool(), check["hashMatches"].as_bool()), (Some(true), Some(true)));
    assert_eq!(check["serverSeed"], server_seed.as_str());
    let other = sign_in(&app, 1011).await;
    let (status, body) = get(&app, &other, &format!("/api/fairness/verify?spin={spin_id}")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("spin_not_found")), "another player's spin");
    let (status, body) =
        send(&app, &player, reqwest::Method::POST, "/api/fairness/rotate", json!({ "clientSeed": "a:b" }))
            .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_client_seed")));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_spin_that_carries_a_pool_past_its_drop_point_pays_the_player(pool: PgPool) {
    let app = app_with(&pool, |s| s.demo.seed_jackpots = false).await;
    // Drop point in [10.00, 10.001): any contribution of 0.001 or more drops it.
    create_jackpot(
        &pool,
        JackpotSpec {
            id: "tiny-drop",
            trigger: TriggerMode::MustDrop,
            seed: "10.00",
            max: "10.001",
            rate_ppm: 10_000,
            reserve_ppm: 0,
            min_bet: "0.10",
        },
    )
    .await;
    let player = sign_in(&app, 1012).await;
    let (status, receipt) = spin(&app, &player, "jp", "1.00").await;
    assert_eq!(status, 200, "{receipt}");
    let awards = receipt["jackpotAwards"].as_array().unwrap();
    assert_eq!(awards.len(), 1, "{receipt}");
    assert_eq!(awards[0]["jackpotId"], "tiny-drop");
    let amount = micros(&awards[0]["amount"]);
    assert!((10_000_000..=10_001_000).contains(&amount), "{amount}");
    assert_eq!(micros(&receipt["jackpotWin"]), amount);
    assert_eq!(receipt["isWin"], true);
    let expected = 1_000_000_000 - 1_000_000 + micros(&receipt["win"]) + amount;
    assert_eq!(micros(&receipt["balance"]), expected);
    assert_eq!(micros(&get(&app, &player, "/api/wallet").await.1["balance"]), expected);
    let (_, history) = get(&app, &player, "/api/wallet/history").await;
    let kinds: Vec<&str> =
        history["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"award") && kinds.contains(&"bet") && kinds.contains(&"demo_credit"),
        "{kinds:?}"
    );
    assert_books_balance(&pool).await;
    assert!(reconcile(&pool).await.mismatches.is_empty());
}

/// A pool only a provider's award drops, fed by the slot and by providers.
fn provider_pot(id: &'static str) -> JackpotSpec {
    JackpotSpec {
        id,
        trigger: TriggerMode::Provider,
        seed: "100.00",
        max: "1000000.00",
        rate_ppm: 10_000,
        reserve_ppm: 100_000,
        min_bet: "0.10",
    }
}

async fn open_value(pool: &PgPool, jackpot: &str) -> i64 {
    scalar(
        pool,
        &format!(
            "select value_micros from jackpot_cycles where jackpot_id = '{jackpot}' and closed_at is null"
        ),
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_spin_after_a_providers_contribution_counts_from_the_pool_as_it_now_is(pool: PgPool) {
    let app = app_with(&pool, |s| s.demo.seed_jackpots = false).await;
    create_jackpot(&pool, provider_pot("shared-pot")).await;
    let player = sign_in(&app, 1020).await;
    // A 1.00 bet puts 0.01 in: 0.009 in the pool, 0.001 in the reserve.
    let mut expected = 100_000_000;
    for round in 0..3 {
        // The first spin of a round follows the provider's contribution,
        // which the spins before it did not know of; the second follows a spin.
        for n in 0..2 {
            let (status, receipt) = spin(&app, &player, &format!("round-{round}-{n}"), "1.00").await;
            assert_eq!(status, 200, "{receipt}");
            expected += 9_000;
            let contribution = &receipt["contributions"][0];
            assert_eq!(contribution["jackpotId"], "shared-pot");
            assert_eq!(micros(&contribution["value"]), expected, "round {round}, spin {n}");
            assert_eq!(open_value(&pool, "shared-pot").await, expected);
        }
        let body = json!({ "gameId": "test-game", "playerId": "elsewhere", "betAmount": "10.00", "currency": "CHIPS" });
        let (status, answer) =
            crate::service::contribute(&app, "shared-pot", &format!("provider-{round}"), body).await;
        assert_eq!(status, 200, "{answer}");
        expected += 90_000;
        assert_eq!(micros(&answer["value"]), expected);
    }
    assert_books_balance(&pool).await;
    assert!(reconcile(&pool).await.mismatches.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn many_players_spinning_while_a_provider_contributes_add_up_exactly(pool: PgPool) {
    const PLAYERS: i64 = 24;
    const SPINS: usize = 20;
    const PROVIDED: usize = 200;
    let app = app_with(&pool, |s| s.demo.seed_jackpots = false).await;
    create_jackpot(&pool, provider_pot("shared-pot")).await;
    create_jackpot(&pool, crate::service::STORM).await;
    let mut players = Vec::new();
    for n in 0..PLAYERS {
        players.push(sign_in(&app, 1100 + n).await);
    }
    let url = app.url("/api/spin");
    let mut tasks = Vec::new();
    for player in &players {
        let (client, url, token, id) = (app.client.clone(), url.clone(), player.token.clone(), player.id);
        tasks.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            for n in 0..SPINS {
                let (status, receipt) = spin_with(&client, &url, &token, &format!("{id}-{n}"), "1.00").await;
                assert_eq!(status, 200, "{receipt}");
                receipts.push(receipt);
            }
            (id, receipts)
        }));
    }
    let provider = app.service("test-game");
    let contributing = tokio::spawn(async move {
        for n in 0..PROVIDED {
            let jackpot = ["shared-pot", "storm"][n % 2];
            let body = json!({ "gameId": "test-game", "playerId": "elsewhere", "betAmount": "1.00", "currency": "CHIPS" });
            let path = format!("/jackpot/{jackpot}/contribute");
            let response = provider.post(&path, &body, &format!("provided-{n}")).await.unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    let mut awarded = 0;
    for task in tasks {
        let (id, receipts) = task.await.unwrap();
        // One player's spins are decided one after another: each receipt's
        // balance is the one before moved by its net, and the last is the wallet's.
        let mut balance = 1_000_000_000;
        for receipt in &receipts {
            balance += micros(&receipt["net"]);
            assert_eq!(micros(&receipt["balance"]), balance, "{receipt}");
            let spin_id = receipt["spinId"].as_i64().unwrap();
            let stored: Vec<(String, i64, i64)> = sqlx::query_as(
                "select jackpot_id, amount_micros, value_after_micros from jackpot_contributions
                  where idempotency_key = $1 order by jackpot_id",
            )
            .bind(format!("spin:{spin_id}"))
            .fetch_all(&pool)
            .await
            .unwrap();
            let answered: Vec<(String, i64, i64)> = receipt["contributions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (c["jackpotId"].as_str().unwrap().to_owned(), micros(&c["amount"]), micros(&c["value"]))
                })
                .collect();
            assert_eq!(answered, stored, "spin {spin_id}");
            awarded += receipt["jackpotAwards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| micros(&a["amount"]))
                .sum::<i64>();
        }
        let player = players.iter().find(|p| p.id == id).unwrap();
        assert_eq!(micros(&get(&app, player, "/api/wallet").await.1["balance"]), balance);
    }
    contributing.await.unwrap();
    assert_eq!(scalar(&pool, "select count(*) from spins").await, PLAYERS * SPINS as i64);
    assert_eq!(
        scalar(&pool, "select count(*) from jackpot_contributions").await,
        PLAYERS * SPINS as i64 * 2 + PROVIDED as i64
    );
    // Every pool holds its seeds and shares less what it paid.
    for jackpot in ["shared-pot", "storm"] {
        let (seeds, shares, paid): (i64, i64, i64) = sqlx::query_as(
            "select (select sum(seed_micros) from jackpot_cycles where jackpot_id = $1)::bigint,
                    (select sum(pool_share_micros - overflow_micros) from jackpot_contributions
                      where jackpot_id = $1)::bigint,
                    (select coalesce(sum(awarded_amount_micros), 0) from jackpot_awards where jackpot_id = $1)::bigint",
        )
        .bind(jackpot)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(seeds + shares, paid + open_value(&pool, jackpot).await, "{jackpot}");
    }
    let storm_awards = scalar(&pool, "select count(*) from jackpot_awards where jackpot_id = 'storm'").await;
    assert!(storm_awards > 5, "the storm pool dropped {storm_awards} times");
    let to_players = scalar(
        &pool,
        "select coalesce(sum(awarded_amount_micros), 0)::bigint from jackpot_awards where player_id <> 'elsewhere'",
    )
    .await;
    assert_eq!(awarded, to_players, "every award a spin won is on its receipt");
    assert_books_balance(&pool).await;
    assert!(reconcile(&pool).await.mismatches.is_empty());
    crate::audit::assert_trail_covers_every_contribution(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_wallet_history_pages_through_every_transfer_once(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 1013).await;
    for i in 0..7 {
        assert_eq!(spin(&app, &player, &format!("h{i}"), "0.50").await.0, 200);
    }
    let mut seen = Vec::new();
    let mut sum = 0;
    let mut path = "/api/wallet/history?limit=3".to_owned();
    loop {
        let (status, page) = get(&app, &player, &path).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 3);
        for entry in entries {
            seen.push(entry["id"].as_i64().unwrap());
            sum += micros(&entry["amount"]);
        }
        match page["nextBefore"].as_i64() {
            Some(before) => path = format!("/api/wallet/history?limit=3&before={before}"),
            None => break,
        }
    }
    let expected = scalar(
        &pool,
        &format!(
            "select count(*) from ledger_transfers t join ledger_accounts a
                on a.id in (t.debit_account_id, t.credit_account_id)
             where a.kind = 'player_wallet' and a.owner = '{}'",
            player.id
        ),
    )
    .await;
    assert_eq!(seen.len() as i64, expected);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats: {seen:?}");
    assert_eq!(
        sum,
        micros(&get(&app, &player, "/api/wallet").await.1["balance"]),
        "the entries add up to the balance"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_raised_limit_applies_once_its_cooling_off_is_over(pool: PgPool) {
    let definition = slot_paying_nothing();
    let app = app_with(&pool, |s| {
        s.slot.definition = Some(definition.clone());
        s.players.limit_cooling_off_s = 1;
    })
    .await;
    let player = sign_in(&app, 1014).await;
    let put = |body: Value| send(&app, &player, reqwest::Method::PUT, "/api/limits", body);
    assert_eq!(put(json!({ "dailyLossLimit": "1.00" })).await.0, 200);
    assert_eq!(spin(&app, &player, "c1", "1.00").await.0, 200);
    assert_eq!(spin(&app, &player, "c2", "1.00").await.0, 403);
    let (_, limits) = put(json!({ "dailyLossLimit": "5.00" })).await;
    assert_eq!(
        (limits["dailyLossLimit"].as_str(), limits["pending"]["dailyLossLimit"].as_str()),
        (Some("1.00"), Some("5.00"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(spin(&app, &player, "c3", "1.00").await.0, 200, "the raised limit applies");
    let (_, limits) = get(&app, &player, "/api/limits").await;
    assert_eq!(limits["dailyLossLimit"], "5.00");
    assert_eq!(limits["pending"], Value::Null);
    assert_eq!(limits["lostToday"], "2.00");
    std::fs::remove_file(definition).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn the_dev_sign_in_page_exists_only_in_development(pool: PgPool) {
    let off = app_with(&pool, |_| {}).await;
    assert_eq!(off.get("/dev/sign-in").await.status(), 404, "off by default");
    let mut production = crate::helpers::test_settings();
    production.deployment.environment = server::config::Environment::Production;
    production.dev.sign_in_page = true;
    let refused = server::startup::Application::with_pool(production, pool.clone()).await;
    assert!(refused.err().unwrap().to_string().contains("development only"), "refused in production");

    let dev = app_with(&pool, |s| {
        s.deployment.environment = server::config::Environment::Development;
        s.dev.sign_in_page = true;
    })
    .await;
    let json: Value = dev.get("/dev/sign-in?id=77&format=json").await.json().await.unwrap();
    let response = dev.client.post(dev.url("/api/auth/telegram")).json(&json).send().await.unwrap();
    assert_eq!(response.status(), 200, "the JSON form is the sign-in body");
    let page = dev.get("/dev/sign-in?id=4242&first_name=Nar%C4%B1n&username=narin&language_code=az").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let init_data = html
        .split_once(r#"<textarea id="init-data" readonly>"#)
        .and_then(|(_, rest)| rest.split_once("</textarea>"))
        .map(|(text, _)| {
            text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        })
        .expect("the page shows initData");
    let (status, body) = crate::auth::sign_in(&dev, &init_data).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["player"]["telegramUserId"], 4242);
    assert_eq!(body["player"]["firstName"], "Narın");
    assert_eq!(body["player"]["username"], "narin");

    // The launch link opens the frame page, which launches the app as
    // Telegram's web client does, with fresh initData of its own.
    assert!(html.contains(
        r#"href="/dev/telegram?id=4242&amp;first_name=Nar%C4%B1n&amp;language_code=az&amp;username=narin""#
    ));
    let frame = dev.get("/dev/telegram?id=4242&first_name=Nar%C4%B1n&language_code=az").await;
    assert_eq!(frame.status(), 200);
    let frame = frame.text().await.unwrap();
    let launch = frame
        .split_once(r#"src="/#tgWebAppData="#)
        .and_then(|(_, rest)| rest.split_once("&amp;"))
        .map(|(encoded, _)| percent_encoding::percent_decode_str(encoded).decode_utf8().unwrap().into_owned())
        .expect("the frame launches the app with initData");
    assert_ne!(launch, init_data, "a launch of its own");
    let (status, body) = crate::auth::sign_in(&dev, &launch).await;
    assert_eq!((status, &body["player"]["telegramUserId"]), (200, &json!(4242)), "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn demo_deposits_respect_the_daily_deposit_limit_and_are_idempotent(pool: PgPool) {
    let deposit = |app: &TestApp, player: &Player, key: &str, amount: &str| {
        let request = app
            .client
            .post(app.url("/api/wallet/deposit"))
            .bearer_auth(&player.token)
            .header("idempotency-key", key)
            .json(&json!({ "amount": amount }));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let off = app_with(&pool, |_| {}).await;
    let (status, body) = deposit(&off, &sign_in(&off, 1015).await, "d0", "10.00").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("demo_mode_off")), "off by default");

    let app = app_with(&pool, |s| s.players.demo_deposits = true).await;
    // Each test server signs with a key of its own: sign in again.
    let player = sign_in(&app, 1015).await;
    let put = |body: Value| send(&app, &player, reqwest::Method::PUT, "/api/limits", body);
    assert_eq!(put(json!({ "dailyDepositLimit": "50.00" })).await.0, 200);
    let (status, first) = deposit(&app, &player, "d1", "30.00").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["balance"].as_str(), first["depositedToday"].as_str()),
        (Some("1030.00"), Some("30.00"))
    );
    let (status, again) = deposit(&app, &player, "d1", "30.00").await;
    assert_eq!((status, &again), (200, &first), "a retry answers the first deposit");
    let (status, body) = deposit(&app, &player, "d1", "31.00").await;
    assert_eq!((status, body["code"].as_str()), (422, Some("idempotency_key_reused")));
    let (status, body) = deposit(&app, &player, "d2", "20.01").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("deposit_limit_reached")), "{body}");
    assert_eq!(body["details"]["depositedToday"], "30.00");
    assert_eq!(deposit(&app, &player, "d3", "20.00").await.0, 200, "up to the limit exactly");
    for (amount, code) in [("0", "invalid_body"), ("-5.00", "invalid_body"), ("1000.01", "invalid_body")] {
        assert_eq!(deposit(&app, &player, "bad", amount).await.1["code"], code, "{amount}");
    }
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "1050.00");
    let (_, history) = get(&app, &player, "/api/wallet/history?limit=2").await;
    let kinds: Vec<&str> =
        history["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["deposit", "deposit"]);
    assert_eq!(put(json!({ "selfExcludeDays": 7 })).await.0, 200);
    assert_eq!(deposit(&app, &player, "d4", "1.00").await.1["code"], "self_excluded");
    assert_books_balance(&pool).await;
}
