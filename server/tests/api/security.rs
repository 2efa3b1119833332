//! Issue 14's black-box tests: an outside caller against the running server
//! (real PostgreSQL and Redis) tries what an attacker would, and each test
//! asserts the defence. `docs/SECURITY.md` lists the threat each one covers.

use serde_json::{json, Value};
use server::config::{Role, ServiceKey};
use sqlx::{Connection, PgPool};

use crate::helpers::TestApp;
use crate::players::{app_with, get, micros, sign_in, spin};
use crate::service::{assert_books_balance, create_jackpot, scalar, STORM};

/// A second game provider's key, `test-game-b`.
fn second_provider(settings: &mut server::config::Settings) {
    settings.service.keys.push(ServiceKey {
        id: "test-game-b".into(),
        secret: crate::helpers::test_secret("test-game-b").into(),
        role: Role::GameService,
        provider: None,
        games: crate::helpers::TEST_GAMES.map(String::from).to_vec(),
        jackpots: crate::helpers::TEST_JACKPOTS.map(String::from).to_vec(),
        bet_max_micros: 1_000_000_000_000,
        daily_volume_max_micros: 1_000_000_000_000_000,
    });
}

async fn contribute_as(app: &TestApp, key_id: &str, jackpot: &str, key: &str, body: &Value) -> (u16, Value) {
    let path = format!("/jackpot/{jackpot}/contribute");
    let response = app.service(key_id).post(&path, body, key).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn provider_bet(player: &str, amount: &str) -> Value {
    json!({ "gameId": "provider-slot", "playerId": player, "betAmount": amount, "currency": "CHIPS" })
}

// ---- 1. External players have their own namespace ---------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_providers_player_named_like_a_mini_app_player_never_touches_that_wallet(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 4101).await;
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "1000.00");
    // A must-drop pool that a bet of 100.00 always carries past its drop
    // point: the provider's player named like the Mini App player wins it.
    create_jackpot(&pool, STORM).await;
    let named_alike = player.id.to_string();
    let (status, receipt) =
        contribute_as(&app, "test-game", "storm", "round-1", &provider_bet(&named_alike, "100.00")).await;
    assert_eq!(status, 200, "{receipt}");
    let award = &receipt["award"];
    assert_eq!(award["playerId"], named_alike, "{receipt}");
    let awarded = micros(&award["awardedAmount"]);
    assert!(awarded > 0);
    // The Mini App player's wallet did not move…
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "1000.00");
    // …the provider's player's own wallet holds the award…
    let external: i64 = sqlx::query_scalar(
        "select balance_micros from ledger_accounts where kind = 'external_wallet' and owner = $1",
    )
    .bind(format!("test-game/{named_alike}"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(external, awarded);
    // …and an admin's rollback takes it back from there, not from the player.
    let award_id = award["awardId"].as_i64().unwrap();
    let response = app
        .service("test-admin")
        .post(&format!("/admin/awards/{award_id}/rollback"), &json!({ "reason": "test" }), "rb-1")
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], "1000.00");
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_providers_players_with_one_name_have_two_wallets(pool: PgPool) {
    let app = app_with(&pool, second_provider).await;
    create_jackpot(&pool, STORM).await;
    for (key_id, round) in [("test-game", "a-1"), ("test-game-b", "b-1")] {
        let (status, receipt) =
            contribute_as(&app, key_id, "storm", round, &provider_bet("42", "100.00")).await;
        assert_eq!(status, 200, "{receipt}");
        assert!(receipt["award"].is_object(), "{receipt}");
    }
    let wallets: Vec<(String, i64)> = sqlx::query_as(
        "select owner, balance_micros from ledger_accounts where kind = 'external_wallet' order by owner",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let owners: Vec<&str> = wallets.iter().map(|(owner, _)| owner.as_str()).collect();
    assert_eq!(owners, ["test-game-b/42", "test-game/42"]);
    assert!(wallets.iter().all(|(_, balance)| *balance > 0));
}

// ---- 2. Service keys are scoped ---------------------------------------------

/// A key of provider `acme` that may bet up to 5.00 at a time, 10.00 a day,
/// under `acme-slot`, on the mega pool and the provider pot only.
fn scoped_key(settings: &mut server::config::Settings) {
    settings.service.keys.push(ServiceKey {
        id: "acme-1".into(),
        secret: crate::helpers::test_secret("acme-1").into(),
        role: Role::GameService,
        provider: Some("acme".into()),
        games: vec!["acme-slot".into()],
        jackpots: vec!["cekpot-mega".into(), "provider-pot".into()],
        bet_max_micros: 5_000_000,
        daily_volume_max_micros: 10_000_000,
    });
}

fn acme_bet(game: &str, amount: &str) -> Value {
    json!({ "gameId": game, "playerId": "p-1", "betAmount": amount, "currency": "CHIPS" })
}

#[sqlx::test(migrations = "../migrations")]
async fn a_service_key_is_refused_outside_its_games_jackpots_and_bet_size(pool: PgPool) {
    let app = app_with(&pool, scoped_key).await;
    crate::service::provider_jackpot(&pool).await;
    let cases = [
        // The house slot's game: its bets come only from spins.
        ("cekpot-mega", acme_bet("cekpot-slot", "1.00"), 403, "game_not_allowed"),
        ("cekpot-mega", acme_bet("other-slot", "1.00"), 403, "game_not_allowed"),
        ("lucky-sevens", acme_bet("acme-slot", "1.00"), 403, "jackpot_not_allowed"),
        ("cekpot-mega", acme_bet("acme-slot", "5.01"), 422, "bet_too_large"),
    ];
    for (n, (jackpot, body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = contribute_as(&app, "acme-1", jackpot, &format!("c-{n}"), &body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{jackpot} {body}: {answer}");
    }
    // It cannot award a provider pot it was not given either.
    let response = app
        .service("acme-1")
        .post("/jackpot/storm/award", &json!({ "playerId": "p-1", "sessionId": "s", "cycle": 1 }), "a-1")
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(scalar(&pool, "select count(*) from jackpot_contributions").await, 0, "nothing written");
    // Within its scope it contributes.
    let (status, receipt) =
        contribute_as(&app, "acme-1", "cekpot-mega", "ok-1", &acme_bet("acme-slot", "5.00")).await;
    assert_eq!(status, 200, "{receipt}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_service_keys_bets_of_the_day_stop_at_its_daily_volume(pool: PgPool) {
    let app = app_with(&pool, scoped_key).await;
    let bet = |amount| acme_bet("acme-slot", amount);
    assert_eq!(contribute_as(&app, "acme-1", "cekpot-mega", "v-1", &bet("4.00")).await.0, 200);
    assert_eq!(contribute_as(&app, "acme-1", "cekpot-mega", "v-2", &bet("4.00")).await.0, 200);
    let (status, answer) = contribute_as(&app, "acme-1", "cekpot-mega", "v-3", &bet("4.00")).await;
    assert_eq!((status, answer["code"].as_str()), (429, Some("volume_limit_reached")), "{answer}");
    assert_eq!(answer["details"]["betToday"], "8.00");
    // A bet the engine refuses does not count: 0.10 is below the mega pool's minimum.
    assert_eq!(contribute_as(&app, "acme-1", "cekpot-mega", "v-4", &bet("0.10")).await.0, 422);
    let (status, answer) = contribute_as(&app, "acme-1", "cekpot-mega", "v-5", &bet("2.00")).await;
    assert_eq!(status, 200, "8.00 + 2.00 is exactly the day's volume: {answer}");
    assert_eq!(scalar(&pool, "select count(*) from jackpot_contributions").await, 3);
}

// ---- 3. Idempotency keys are unique per caller ------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_provider_squatting_the_slots_spin_keys_cannot_break_a_players_spin(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 4103).await;
    // Spin ids are sequential and public: the provider sends the keys the
    // next spins' contributions would use, to the pool every game feeds.
    for id in 1..=40 {
        let key = format!("spin:{id}");
        let (status, body) =
            contribute_as(&app, "test-game", "cekpot-mega", &key, &provider_bet("p-1", "1.00")).await;
        assert_eq!(status, 200, "{key}: {body}");
    }
    for n in 0..3 {
        let (status, receipt) = spin(&app, &player, &format!("mine-{n}"), "1.00").await;
        assert_eq!(status, 200, "{receipt}");
        let mega: Vec<&Value> = receipt["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["jackpotId"] == "cekpot-mega")
            .collect();
        assert_eq!(mega.len(), 1, "the spin fed the mega pool: {receipt}");
        assert_eq!(micros(&mega[0]["amount"]), 1_500);
    }
    // 40 provider contributions and 3 of the slot's.
    assert_eq!(
        scalar(&pool, "select count(*) from jackpot_contributions where jackpot_id = 'cekpot-mega'").await,
        43
    );
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_providers_may_send_the_same_idempotency_key(pool: PgPool) {
    let app = app_with(&pool, second_provider).await;
    let body = provider_bet("p-1", "2.00");
    let (status_a, a) = contribute_as(&app, "test-game", "cekpot-mega", "round-77", &body).await;
    let (status_b, b) = contribute_as(&app, "test-game-b", "cekpot-mega", "round-77", &body).await;
    assert_eq!((status_a, status_b), (200, 200), "{a} {b}");
    assert_ne!(a["contributionId"], b["contributionId"], "B's bet is its own, not a replay of A's");
    assert_eq!(micros(&b["value"]) - micros(&a["value"]), micros(&b["poolShare"]));
    // Each one's retry replays its own answer.
    let (_, again) = contribute_as(&app, "test-game-b", "cekpot-mega", "round-77", &body).await;
    assert_eq!(again, b);
}

// ---- 4. Demo chips never touch real money ----------------------------------

/// The jackpots a spin's receipt says it fed.
fn fed_jackpots(receipt: &Value) -> Vec<&str> {
    receipt["contributions"].as_array().unwrap().iter().map(|c| c["jackpotId"].as_str().unwrap()).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn demo_chips_never_feed_or_win_a_real_money_pool(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    // A real-money (EUR) pool every game feeds, which any bet of 0.01 or more
    // carries past its drop point: a demo spin that fed it would win it.
    crate::service::create_jackpot_in(
        &pool,
        "EUR",
        crate::service::JackpotSpec {
            id: "tiny-drop",
            trigger: domain::jackpot::TriggerMode::MustDrop,
            seed: "10.00",
            max: "10.001",
            rate_ppm: 10_000,
            reserve_ppm: 0,
            min_bet: "0.01",
        },
    )
    .await;
    let real_before = scalar(
        &pool,
        "select balance_micros from ledger_accounts where kind = 'jackpot_pool' and owner = 'tiny-drop'",
    )
    .await;
    let player = sign_in(&app, 4104).await;
    let (_, wallet) = get(&app, &player, "/api/wallet").await;
    assert_eq!(wallet, json!({ "currency": "CHIPS", "balance": "1000.00" }), "demo credit is play money");
    for n in 0..3 {
        let (status, receipt) = spin(&app, &player, &format!("demo-{n}"), "1.00").await;
        assert_eq!(status, 200, "{receipt}");
        assert!(receipt["jackpotAwards"].as_array().unwrap().is_empty(), "{receipt}");
        let fed = fed_jackpots(&receipt);
        assert!(!fed.is_empty() && !fed.contains(&"tiny-drop"), "demo pools only: {fed:?}");
    }
    let real_after = scalar(
        &pool,
        "select balance_micros from ledger_accounts where kind = 'jackpot_pool' and owner = 'tiny-drop'",
    )
    .await;
    assert_eq!(real_after, real_before, "the real-money pool did not move");
    // No wallet of a real currency was credited with demo money.
    let mixed = scalar(
        &pool,
        "select count(*) from ledger_transfers t join ledger_accounts a on a.id = t.credit_account_id
          where t.kind = 'demo_credit' and a.currency = 'EUR'",
    )
    .await;
    assert_eq!(mixed, 0);
    assert_books_balance(&pool).await;
}

/// The real binary, in development (so only the money rules can refuse it),
/// with `env` over a real-money setup.
fn start_in_real_money(pool: &PgPool, env: &[(&str, &str)]) -> (bool, String) {
    let mut all = vec![
        ("CEKPOT_DEPLOYMENT__ENVIRONMENT", "development"),
        ("CEKPOT_MONEY__MODE", "real"),
        ("CEKPOT_MONEY__CURRENCY", "EUR"),
        ("CEKPOT_PLAYERS__DEMO_CREDIT_MICROS", "0"),
    ];
    all.extend_from_slice(env);
    production_start(pool, &all)
}

/// Inserts one transfer as any writer of the ledger could, answering the
/// database's error code if it refuses it.
async fn insert_transfer(pool: &PgPool, kind: &str, debit: i64, credit: i64) -> Option<String> {
    sqlx::query(
        "insert into ledger_transfers (debit_account_id, credit_account_id, amount_micros, kind, reference)
         values ($1, $2, 1000000, $3, 'by-hand')",
    )
    .bind(debit)
    .bind(credit)
    .bind(kind)
    .execute(pool)
    .await
    .err()
    .map(|e| e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()).unwrap_or_default())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_refuses_a_transfer_between_two_currencies_or_demo_credit_into_real_money(pool: PgPool) {
    let account = |kind: &'static str, currency: &'static str| {
        let pool = pool.clone();
        async move {
            // A wallet is a Mini App player's (their id); the house has no owner.
            let owner = if kind == "player_wallet" { "9001" } else { "" };
            sqlx::query_scalar::<_, i64>(
                "insert into ledger_accounts (kind, owner, currency) values ($1, $2, $3) returning id",
            )
            .bind(kind)
            .bind(owner)
            .bind(currency)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let chips_house = account("house", "CHIPS").await;
    let chips_wallet = account("player_wallet", "CHIPS").await;
    let eur_house = account("house", "EUR").await;
    let eur_wallet = account("player_wallet", "EUR").await;
    // Within one currency: taken. Across two, either way, or demo credit into
    // real money: refused by the database whoever writes it (check violation).
    assert_eq!(insert_transfer(&pool, "demo_credit", chips_house, chips_wallet).await, None);
    assert_eq!(insert_transfer(&pool, "deposit", eur_house, eur_wallet).await, None);
    for (kind, debit, credit) in [
        ("deposit", chips_house, eur_wallet),
        ("deposit", eur_house, chips_wallet),
        ("demo_credit", eur_house, eur_wallet),
    ] {
        assert_eq!(
            insert_transfer(&pool, kind, debit, credit).await.as_deref(),
            Some("23514"),
            "{kind} {debit} → {credit}"
        );
    }
    let booked = scalar(&pool, "select count(*) from ledger_transfers where reference = 'by-hand'").await;
    assert_eq!(booked, 2);
}

/// The database's answer to `sql` (with `binds` as text): `None` when it took
/// it, else the SQLSTATE and the constraint it names.
async fn refusal(pool: &PgPool, sql: &str, binds: &[&str]) -> Option<(String, Option<String>)> {
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    let error = query.execute(pool).await.err()?;
    let database = error.as_database_error().unwrap_or_else(|| panic!("{sql}: {error}"));
    Some((database.code().unwrap_or_default().into_owned(), database.constraint().map(str::to_owned)))
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_refuses_an_account_whose_kind_currency_or_owner_is_malformed(pool: PgPool) {
    let insert = "insert into ledger_accounts (kind, owner, currency) values ($1, $2, $3)";
    let refused = |constraint: &str| Some(("23514".to_owned(), Some(constraint.to_owned())));
    for (kind, owner, currency, expected) in [
        ("player_wallet", "42", "EUR", None),
        ("external_wallet", "test-game/p-1", "CHIPS", None),
        ("external_wallet", "@legacy/p-1", "EUR", None),
        ("jackpot_pool", "lucky-sevens", "EUR", None),
        ("house", "", "EUR", None),
        ("wallet", "43", "EUR", refused("ledger_accounts_kind_known")),
        ("player_wallet", "43", "eur", refused("ledger_accounts_currency_format")),
        ("player_wallet", "43", "EURODOLLAR", refused("ledger_accounts_currency_format")),
        // A Mini App player's wallet is digits only; a provider's player's is
        // '<provider>/<player>': the two namespaces cannot meet.
        ("player_wallet", "test-game/p-2", "EUR", refused("ledger_accounts_wallet_owner_format")),
        ("player_wallet", "043", "EUR", refused("ledger_accounts_wallet_owner_format")),
        ("external_wallet", "44", "EUR", refused("ledger_accounts_wallet_owner_format")),
        ("external_wallet", "test-game/", "EUR", refused("ledger_accounts_wallet_owner_format")),
    ] {
        assert_eq!(
            refusal(&pool, insert, &[kind, owner, currency]).await,
            expected,
            "{kind} {owner:?} {currency}"
        );
    }
    assert_eq!(scalar(&pool, "select count(*) from ledger_accounts").await, 5);

    // Changing an account's identity afterwards is checked the same way.
    let rename = "update ledger_accounts set owner = $1 where kind = 'player_wallet' and owner = '42'";
    assert_eq!(refusal(&pool, rename, &["p-42"]).await, refused("ledger_accounts_wallet_owner_format"));
    let rekind = "update ledger_accounts set kind = $1 where owner = '42'";
    assert_eq!(
        refusal(&pool, rekind, &["external_wallet"]).await,
        refused("ledger_accounts_wallet_owner_format")
    );
    let recurrency = "update ledger_accounts set currency = $1 where owner = '42'";
    assert_eq!(refusal(&pool, recurrency, &["euro"]).await, refused("ledger_accounts_currency_format"));
    // Balances move freely above zero, and never below it.
    let credit = "update ledger_accounts set balance_micros = balance_micros + $1::bigint where owner = '42'";
    assert_eq!(refusal(&pool, credit, &["5000000"]).await, None);
    assert_eq!(refusal(&pool, credit, &["-6000000"]).await, refused("ledger_accounts_wallet_not_negative"));
    let owners = scalar(
        &pool,
        "select count(*) from ledger_accounts where owner = '42' and kind = 'player_wallet' \
                                 and currency = 'EUR' and balance_micros = 5000000",
    )
    .await;
    assert_eq!(owners, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_real_money_installation_refuses_demo_money_at_start(pool: PgPool) {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("CEKPOT_PLAYERS__DEMO_CREDIT_MICROS", "1000000000")], "players.demo_credit_micros must be 0"),
        (&[("CEKPOT_PLAYERS__DEMO_DEPOSITS", "true")], "players.demo_deposits must be false"),
        // Play money named like real money, and the other way round.
        (&[("CEKPOT_MONEY__MODE", "demo")], "money.currency EUR is real money but money.mode is demo"),
        (&[("CEKPOT_MONEY__CURRENCY", "CHIPS")], "money.currency CHIPS is demo money but money.mode is real"),
    ];
    for (env, named) in cases {
        let (ok, printed) = start_in_real_money(&pool, env);
        assert!(!ok, "started with {env:?}");
        assert!(printed.contains(named), "{env:?}: expected {named:?} in:\n{printed}");
    }
    // Without demo money it starts; a new player's wallet is real money and
    // empty, and no demo deposit can fill it.
    let app = app_with(&pool, |s| {
        s.money.mode = domain::money::MoneyMode::Real;
        s.money.currency = "EUR".into();
        s.players.demo_credit_micros = 0;
    })
    .await;
    let player = sign_in(&app, 4105).await;
    assert_eq!(get(&app, &player, "/api/wallet").await.1, json!({ "currency": "EUR", "balance": "0.00" }));
    let response = app
        .client
        .post(app.url("/api/wallet/deposit"))
        .bearer_auth(&player.token)
        .header("idempotency-key", "d-1")
        .json(&json!({ "amount": "100.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "demo_mode_off");
    assert_eq!(
        scalar(&pool, "select count(*) from ledger_transfers where kind in ('demo_credit', 'deposit')").await,
        0,
        "no demo money moved"
    );
}

// ---- 8. The next server seed is committed before the client seed ------------

#[sqlx::test(migrations = "../migrations")]
async fn the_next_server_seed_is_committed_before_the_player_picks_a_client_seed(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 4108).await;
    let post = |body: Value| {
        let request = app.client.post(app.url("/api/fairness/rotate")).bearer_auth(&player.token).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let mut committed = get(&app, &player, "/api/fairness").await.1["nextServerSeedHash"].clone();
    for (n, client_seed) in ["first-pick", "second_pick", "third"].into_iter().enumerate() {
        assert!(committed.as_str().is_some_and(|h| h.len() == 64), "a commitment is shown: {committed}");
        // Asking again shows the same commitment: it is fixed, not drawn per look.
        assert_eq!(get(&app, &player, "/api/fairness").await.1["nextServerSeedHash"], committed);
        let (status, rotated) = post(json!({ "clientSeed": client_seed })).await;
        assert_eq!(status, 200, "{rotated}");
        // The seed now in use is the one committed before the client seed was known.
        assert_eq!(rotated["serverSeedHash"], committed, "rotation {n}: {rotated}");
        assert_eq!(rotated["clientSeed"], client_seed);
        assert_ne!(rotated["nextServerSeedHash"], committed, "a fresh commitment for the next one");
        let (status, _) = spin(&app, &player, &format!("s-{n}"), "1.00").await;
        assert_eq!(status, 200);
        committed = rotated["nextServerSeedHash"].clone();
    }
    // Each revealed seed hashes to what was committed.
    let (_, last) = post(json!({})).await;
    let revealed = &last["revealed"];
    assert_eq!(revealed["clientSeed"], "third");
    let seed = revealed["serverSeed"].as_str().unwrap();
    assert_eq!(domain::seeds::server_seed_hash(seed), revealed["serverSeedHash"].as_str().unwrap());
}

// ---- 5. Every wallet posting is in the audit chain --------------------------

/// Every transfer the audit trail lists (`detail.transfers`), as
/// (kind, debit account, credit account, amount, reference).
async fn audited_transfers(pool: &PgPool) -> Vec<(String, i64, i64, i64, String)> {
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from audit_records order by seq").fetch_all(pool).await.unwrap();
    let mut listed = Vec::new();
    for body in bodies {
        let record: Value = serde_json::from_str(&body).unwrap();
        for t in record["detail"]["transfers"].as_array().into_iter().flatten() {
            let t = t.as_array().unwrap_or_else(|| panic!("a transfer is a tuple: {record}"));
            listed.push((
                t[0].as_str().unwrap().to_owned(),
                t[1].as_i64().unwrap(),
                t[2].as_i64().unwrap(),
                t[3].as_i64().unwrap(),
                t[4].as_str().unwrap().to_owned(),
            ));
        }
    }
    listed
}

async fn actions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("select (body::jsonb)->>'action' from audit_records order by seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_posting_that_moves_a_wallet_is_in_the_audit_chain(pool: PgPool) {
    let app = app_with(&pool, |s| s.players.demo_deposits = true).await;
    let player = sign_in(&app, 4105).await;
    let send = |method: reqwest::Method, path: &str, body: Value| {
        let request = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&player.token)
            .header("idempotency-key", "dep-1")
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(send(reqwest::Method::POST, "/api/wallet/deposit", json!({ "amount": "25.00" })).await.0, 200);
    for n in 0..3 {
        assert_eq!(spin(&app, &player, &format!("fed-{n}"), "1.00").await.0, 200);
    }
    // Every jackpot paused: these spins' batches accept no contribution.
    sqlx::query("update jackpots set status = 'paused'").execute(&pool).await.unwrap();
    for n in 0..3 {
        assert_eq!(spin(&app, &player, &format!("unfed-{n}"), "1.00").await.0, 200);
    }
    let (status, limits) =
        send(reqwest::Method::PUT, "/api/limits", json!({ "dailyLossLimit": "50.00" })).await;
    assert_eq!(status, 200, "{limits}");
    let (status, rotated) =
        send(reqwest::Method::POST, "/api/fairness/rotate", json!({ "clientSeed": "mine" })).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(send(reqwest::Method::PUT, "/api/limits", json!({ "selfExcludeDays": 7 })).await.0, 200);

    // Each transfer into or out of the player's wallet is listed, with its
    // accounts and amount, in the chain.
    let wallet_transfers: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
        "select t.kind, t.debit_account_id, t.credit_account_id, t.amount_micros, t.reference
           from ledger_transfers t join ledger_accounts a on a.id in (t.debit_account_id, t.credit_account_id)
          where a.kind = 'player_wallet' and a.owner = $1 order by t.id",
    )
    .bind(player.id.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    let kinds: std::collections::BTreeSet<&str> = wallet_transfers.iter().map(|t| t.0.as_str()).collect();
    assert!(kinds.is_superset(&["bet", "demo_credit", "deposit"].into()), "{kinds:?}");
    let audited = audited_transfers(&pool).await;
    for transfer in &wallet_transfers {
        assert!(audited.contains(transfer), "not in the audit chain: {transfer:?}");
    }
    // The spin batches name their spins' balances; the player's own changes
    // are records too.
    let actions = actions(&pool).await;
    for action in ["demo_credit", "deposit", "spin_batch", "limits_changed", "seed_rotated"] {
        assert!(actions.iter().any(|a| a == action), "no {action} record in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "limits_changed").count(), 2, "{actions:?}");
    // The player's own changes are recorded in the trail's terms (micro-units),
    // with what was asked and the limits before and after.
    let trail = &pool;
    let details = |action: &'static str| async move {
        let bodies: Vec<String> = sqlx::query_scalar(
            "select body from audit_records where (body::jsonb)->>'action' = $1 order by seq",
        )
        .bind(action)
        .fetch_all(trail)
        .await
        .unwrap();
        bodies.iter().map(|b| serde_json::from_str::<Value>(b).unwrap()["detail"].clone()).collect::<Vec<_>>()
    };
    let limits_changed = details("limits_changed").await;
    let first = &limits_changed[0];
    assert_eq!(first["playerId"], player.id);
    assert_eq!(first["asked"]["dailyLossMicros"], 50_000_000, "{first}");
    assert_eq!(first["before"]["current"]["dailyLossMicros"], Value::Null, "{first}");
    assert_eq!(first["after"]["current"]["dailyLossMicros"], 50_000_000, "{first}");
    assert_eq!(first["after"]["lostTodayMicros"], micros(&limits["lostToday"]), "{first}");
    assert_eq!(limits_changed[1]["asked"]["selfExcludeDays"], 7);
    assert!(limits_changed[1]["after"]["selfExcludedUntil"].is_string(), "{}", limits_changed[1]);
    let rotation = &details("seed_rotated").await[0];
    assert_eq!(rotation["started"]["seedId"], rotated["seedId"], "{rotation}");
    assert_eq!(rotation["started"]["clientSeed"], "mine");
    assert_eq!(rotation["revealed"]["serverSeed"], rotated["revealed"]["serverSeed"], "{rotation}");
    assert_eq!(rotation["revealed"]["spins"], 6, "{rotation}");
    assert_eq!(rotation["nextServerSeedHash"], rotated["nextServerSeedHash"], "{rotation}");
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from audit_records where (body::jsonb)->>'action' = 'spin_batch'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let spun: i64 = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["detail"]["spins"]["ids"].as_array().unwrap().len()
                as i64
        })
        .sum();
    assert_eq!(spun, 6, "every spin, fed or not, is in a spin batch record");
    let (code, printed) = crate::audit::verify_command(&pool, None);
    assert_eq!(code, 0, "the chain verifies: {printed}");
}

// ---- 6. Production runs as a role that cannot rewrite the trail ------------

/// A login role of its own for this test (roles are the whole server's),
/// granted as `deploy/postgres/app-role.sql` grants `cekpot_app`; answers
/// its name and a URL of the test's database that connects as it.
async fn app_role(pool: &PgPool) -> (String, String) {
    let role = format!("cekpot_app_{}", uuid::Uuid::new_v4().simple());
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/postgres/app-role.sql"))
            .unwrap()
            .replace("cekpot_app", &role);
    sqlx::raw_sql(&script).execute(pool).await.unwrap();
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let url = format!("postgres://{role}@{}/{database}", crate::helpers::database_address(pool));
    (role, url)
}

async fn drop_role(pool: &PgPool, role: &str) {
    sqlx::raw_sql(&format!("drop owned by {role}; drop role {role}")).execute(pool).await.unwrap();
}

/// Bucket settings, as environment variables, for a fresh Object Lock bucket.
fn bucket_env() -> Vec<(&'static str, String)> {
    let endpoint = std::env::var("TEST_S3_URL").expect("TEST_S3_URL: run the tests through `make test`");
    vec![
        ("CEKPOT_AUDIT__BUCKET__NAME", format!("audit-{}", uuid::Uuid::new_v4().simple())),
        ("CEKPOT_AUDIT__BUCKET__ENDPOINT", endpoint),
        ("CEKPOT_AUDIT__BUCKET__PATH_STYLE", "true".into()),
        ("CEKPOT_AUDIT__BUCKET__CREATE", "true".into()),
        ("CEKPOT_AUDIT__BUCKET__ACCESS_KEY_ID", "test".into()),
        ("CEKPOT_AUDIT__BUCKET__SECRET_ACCESS_KEY", "test".into()),
    ]
}

#[sqlx::test(migrations = "../migrations")]
async fn production_refuses_a_role_that_could_rewrite_the_trail_and_a_missing_bucket(pool: PgPool) {
    // As the test run connects: `postgres`, a superuser; no bucket; migrating.
    let (ok, printed) = production_start(&pool, &[]);
    assert!(!ok);
    for named in ["is a superuser", "audit.bucket is unset", "database.migrate_on_start is true"] {
        assert!(printed.contains(named), "expected {named:?} in:\n{printed}");
    }
    // A role that is no superuser but owns the audit records.
    let (role, url) = app_role(&pool).await;
    sqlx::query(&format!("alter table audit_records owner to {role}")).execute(&pool).await.unwrap();
    let bucket = bucket_env();
    let mut env: Vec<(&str, &str)> = bucket.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([("DATABASE_URL", url.as_str()), ("CEKPOT_DATABASE__MIGRATE_ON_START", "false")]);
    let (ok, printed) = production_start(&pool, &env);
    assert!(!ok);
    assert!(printed.contains("owns the audit tables"), "{printed}");
    assert!(!printed.contains("audit.bucket") && !printed.contains("superuser"), "{printed}");
    sqlx::query("alter table audit_records owner to postgres").execute(&pool).await.unwrap();
    drop_role(&pool, &role).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_least_privilege_role_runs_the_server_and_cannot_touch_the_trail(pool: PgPool) {
    use crate::helpers::{free_port, test_keys_env, wait_until_serving, TEST_JWT_SECRET, TEST_METRICS_TOKEN};
    let (role, url) = app_role(&pool).await;
    let port = free_port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("DATABASE_URL", &url)
        .env_remove("REDIS_URL")
        .envs(bucket_env())
        .env("CEKPOT_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("CEKPOT_DEPLOYMENT__ENVIRONMENT", "production")
        .env("CEKPOT_DEPLOYMENT__SINGLE_INSTANCE", "true")
        .env("CEKPOT_DATABASE__MIGRATE_ON_START", "false")
        .env("CEKPOT_AUTH__JWT_SECRET", TEST_JWT_SECRET)
        .env("CEKPOT_HTTP__METRICS_TOKEN", TEST_METRICS_TOKEN)
        .env("CEKPOT_SERVICE__KEYS", test_keys_env())
        .env("CEKPOT_TELEGRAM__BOT_TOKEN", crate::players::BOT_TOKEN)
        .env("CEKPOT_SLOT__SPIN_INTERVAL_MS", "0")
        .env("CEKPOT_PLAYERS__DEMO_DEPOSITS", "true")
        .env("CEKPOT_LOG__FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_serving(port).await;
    let app = crate::helpers::TestApp::at(&format!("http://127.0.0.1:{port}"));
    // Everything the server does, as that role: a player's welcome, spins, a
    // deposit, limits and a rotation; a provider's contribution and award, an
    // admin's rollback and a reconciliation.
    let player = sign_in(&app, 4106).await;
    for n in 0..3 {
        let (status, receipt) = spin(&app, &player, &format!("s-{n}"), "1.00").await;
        assert_eq!(status, 200, "{receipt}");
    }
    let post = |path: &str, body: Value| {
        let request = app
            .client
            .post(app.url(path))
            .bearer_auth(&player.token)
            .header("idempotency-key", "k-1")
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post("/api/wallet/deposit", json!({ "amount": "5.00" })).await, 200);
    assert_eq!(post("/api/fairness/rotate", json!({})).await, 200);
    let limits = app
        .client
        .put(app.url("/api/limits"))
        .bearer_auth(&player.token)
        .json(&json!({ "dailyLossLimit": "20.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), 200);
    crate::service::provider_jackpot(&pool).await;
    let (status, body) =
        contribute_as(&app, "test-game", "provider-pot", "c-1", &provider_bet("p-1", "5.00")).await;
    assert_eq!(status, 200, "{body}");
    let claim = json!({ "playerId": "p-1", "sessionId": "s", "cycle": 1 });
    let response = app.service("test-game").post("/jackpot/provider-pot/award", &claim, "a-1").await.unwrap();
    assert_eq!(response.status(), 200);
    let award: Value = response.json().await.unwrap();
    let rollback = format!("/admin/awards/{}/rollback", award["awardId"]);
    let response =
        app.service("test-admin").post(&rollback, &json!({ "reason": "test" }), "r-1").await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response =
        app.service("test-admin").post("/admin/reconciliations", &json!({}), "rc-1").await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    server.kill().unwrap();
    server.wait().unwrap();

    // The role cannot rewrite what was recorded, nor switch the trail's guard off.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for sql in [
        "update ledger_transfers set amount_micros = 1",
        "delete from ledger_transfers",
        "update spins set win_micros = 0",
        "delete from jackpot_contributions",
        "update audit_records set body = '{}'",
        "truncate audit_segments",
        "alter table audit_records disable trigger audit_records_append_only",
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) values (1, 'x', true, '', 0)",
    ] {
        let error = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        let code = error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert!(matches!(code.as_deref(), Some("42501") | Some("42809")), "{sql}: {error}");
    }
    drop(conn);
    assert_books_balance(&pool).await;
    drop_role(&pool, &role).await;
}

// ---- 7. Request ids are bounded -----------------------------------------------

async fn spin_with_request_id(
    app: &TestApp,
    token: &str,
    key: &str,
    request_id: &str,
) -> (u16, String, Value) {
    let response = app
        .client
        .post(app.url("/api/spin"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("x-request-id", request_id)
        .json(&json!({ "betAmount": "1.00" }))
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    (response.status().as_u16(), echoed, response.json().await.unwrap())
}

/// The request ids the spin's contributions were stored with.
async fn stored_request_ids(pool: &PgPool, receipt: &Value) -> Vec<Option<String>> {
    let key = format!("spin:{}", receipt["spinId"]);
    sqlx::query_scalar("select request_id from jackpot_contributions where idempotency_key = $1 order by id")
        .bind(key)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_players_oversized_or_odd_request_id_is_replaced_before_anything_stores_it(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 4107).await;
    for (n, sent) in
        ["a".repeat(100_000), "has space<and>tags".to_owned(), "x".repeat(129)].iter().enumerate()
    {
        let (status, echoed, receipt) =
            spin_with_request_id(&app, &player.token, &format!("k-{n}"), sent).await;
        assert_eq!(status, 200, "{receipt}");
        assert_ne!(&echoed, sent, "the odd id is not echoed back");
        assert!(echoed.len() <= 128 && !echoed.is_empty(), "{echoed}");
        let stored = stored_request_ids(&pool, &receipt).await;
        assert_eq!(stored.len(), 3);
        assert!(stored.iter().all(|id| id.as_deref() == Some(echoed.as_str())), "{stored:?} vs {echoed}");
    }
    // A well-formed id is kept, echoed and stored as sent.
    let good = "req-1.2_3:abc";
    let (status, echoed, receipt) = spin_with_request_id(&app, &player.token, "k-good", good).await;
    assert_eq!((status, echoed.as_str()), (200, good));
    assert!(stored_request_ids(&pool, &receipt).await.iter().all(|id| id.as_deref() == Some(good)));
}

#[sqlx::test(migrations = "../migrations")]
async fn requests_with_oversized_headers_are_refused_with_a_clear_code(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let response =
        app.client.get(app.url("/api/jackpots")).header("x-filler", "f".repeat(40_000)).send().await.unwrap();
    assert_eq!(response.status(), 431);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "headers_too_large", "{body}");
    // Within the cap, the same request is answered.
    let response =
        app.client.get(app.url("/api/jackpots")).header("x-filler", "f".repeat(1_000)).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

// ---- 9. initData is fresh and used once; sessions renew by refresh token ------

/// `initData` for Telegram user `id`, signed `age_s` seconds ago by the players' test bot.
fn launch_init_data(id: i64, age_s: i64, query_id: &str) -> String {
    let user = json!({ "id": id, "first_name": "Nigar", "language_code": "az" }).to_string();
    let auth_date = (chrono::Utc::now().timestamp() - age_s).to_string();
    domain::telegram::sign(
        &[("query_id", query_id), ("user", &user), ("auth_date", &auth_date)],
        crate::players::BOT_TOKEN,
    )
}

async fn post_auth(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app.client.post(app.url(path)).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[sqlx::test(migrations = "../migrations")]
async fn init_data_is_accepted_for_minutes_not_a_day(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    // Telegram stamps auth_date when the Mini App opens; the app signs in at once.
    let (status, body) =
        post_auth(&app, "/api/auth/telegram", json!({ "initData": launch_init_data(4130, 60, "q-1") })).await;
    assert_eq!(status, 200, "a minute old: {body}");
    // A link captured ten minutes ago is refused by default…
    let (status, body) =
        post_auth(&app, "/api/auth/telegram", json!({ "initData": launch_init_data(4131, 600, "q-2") }))
            .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("init_data_stale")), "{body}");
    // …and the window is configurable, in minutes, never a day.
    let wider = app_with(&pool, |s| s.telegram.init_data_max_age_s = 900).await;
    let (status, body) =
        post_auth(&wider, "/api/auth/telegram", json!({ "initData": launch_init_data(4131, 600, "q-3") }))
            .await;
    assert_eq!(status, 200, "{body}");
    let mut day = crate::helpers::test_settings();
    day.telegram.init_data_max_age_s = 86_400;
    let refused =
        server::startup::Application::with_pool(day, pool.clone()).await.err().expect("a day is refused");
    assert!(format!("{refused:#}").contains("telegram.init_data_max_age_s"), "{refused:#}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_init_data_signs_in_once(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let init_data = launch_init_data(4132, 5, "q-once");
    let (status, first) = post_auth(&app, "/api/auth/telegram", json!({ "initData": init_data })).await;
    assert_eq!(status, 200, "{first}");
    // Replayed — from a log, a history, a leaked link — it is refused, on any instance.
    let other_instance = app_with(&pool, |_| {}).await;
    for app in [&app, &other_instance] {
        let (status, body) = post_auth(app, "/api/auth/telegram", json!({ "initData": init_data })).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("init_data_used")), "{body}");
    }
    // A new launch (new initData) of the same user signs in again.
    let (status, again) =
        post_auth(&app, "/api/auth/telegram", json!({ "initData": launch_init_data(4132, 5, "q-next") }))
            .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["player"]["id"], first["player"]["id"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refresh_token_renews_the_session_once_and_a_replay_ends_it(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let (status, signed_in) =
        post_auth(&app, "/api/auth/telegram", json!({ "initData": launch_init_data(4133, 5, "q-r") })).await;
    assert_eq!(status, 200, "{signed_in}");
    let first = signed_in["refreshToken"].as_str().expect("a refresh token").to_owned();
    assert!(signed_in["refreshExpiresAt"].is_string(), "{signed_in}");

    // The refresh token buys a new access token and a new refresh token.
    let (status, renewed) = post_auth(&app, "/api/auth/refresh", json!({ "refreshToken": first })).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["player"]["id"], signed_in["player"]["id"]);
    let second = renewed["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let wallet = app
        .client
        .get(app.url("/api/wallet"))
        .bearer_auth(renewed["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(wallet.status(), 200, "the renewed access token works");

    // The spent token again: a thief's copy or the owner's; either way the
    // session ends, so the other copy stops working too.
    let (status, body) = post_auth(&app, "/api/auth/refresh", json!({ "refreshToken": first })).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("refresh_token_invalid")), "{body}");
    let (status, body) = post_auth(&app, "/api/auth/refresh", json!({ "refreshToken": second })).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("refresh_token_invalid")), "{body}");

    // Forged, truncated or foreign tokens: the same answer, nothing revealed.
    let forged = {
        let (head, _) = second.rsplit_once('.').unwrap();
        format!("{head}.{}", "A".repeat(43))
    };
    for token in [forged.as_str(), "", "x", "1.1.", &"9".repeat(4_000)] {
        let (status, body) = post_auth(&app, "/api/auth/refresh", json!({ "refreshToken": token })).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("refresh_token_invalid")),
            "{token:.40}: {body}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_session_ends_when_signed_out_or_idle_and_renewing_never_passes_its_end(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let sign_in = |query_id: &'static str| {
        let app = &app;
        async move {
            let init_data = launch_init_data(4134, 5, query_id);
            let (status, body) = post_auth(app, "/api/auth/telegram", json!({ "initData": init_data })).await;
            assert_eq!(status, 200, "{body}");
            body["refreshToken"].as_str().unwrap().to_owned()
        }
    };
    let refused = |token: String| {
        let app = &app;
        async move {
            let (status, body) = post_auth(app, "/api/auth/refresh", json!({ "refreshToken": token })).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("refresh_token_invalid")), "{body}");
        }
    };
    // Signed out.
    let token = sign_in("q-out").await;
    let (status, body) = post_auth(&app, "/api/auth/sign-out", json!({ "refreshToken": token })).await;
    assert_eq!(status, 204, "{body}");
    refused(token).await;
    // Idle past auth.refresh_ttl_s (the clock moved by editing the session's time).
    let idle = sign_in("q-idle").await;
    sqlx::query(
        "update player_sessions set idle_expires_at = now() - interval '1 second' where revoked_at is null",
    )
    .execute(&pool)
    .await
    .unwrap();
    refused(idle).await;
    // Renewing never carries a session past auth.session_max_age_s.
    let capped = app_with(&pool, |s| {
        (s.auth.token_ttl_s, s.auth.refresh_ttl_s, s.auth.session_max_age_s) = (600, 900, 900);
    })
    .await;
    let init_data = launch_init_data(4134, 5, "q-capped");
    let (_, first) = post_auth(&capped, "/api/auth/telegram", json!({ "initData": init_data })).await;
    let (status, renewed) =
        post_auth(&capped, "/api/auth/refresh", json!({ "refreshToken": first["refreshToken"] })).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["refreshExpiresAt"], first["refreshExpiresAt"], "the session's end does not move");
}

// ---- 10. Limits on load -------------------------------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_client_that_never_finishes_its_headers_is_disconnected(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = app_with(&pool, |s| s.http.header_read_timeout_ms = 500).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    // A slowloris client: a request line and one header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /api/jackpots HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue, // a 408 answer may come first
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket is still held after 5 s");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400), "not before its time-out");
    // Everyone else is served meanwhile and after.
    assert_eq!(app.get("/api/jackpots").await.status(), 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn one_player_flooding_spins_cannot_fill_the_queue_for_everyone_else(pool: PgPool) {
    // A small queue, so that a flood that reached it would fill it.
    let app = app_with(&pool, |s| {
        s.engine.queue_max = 40;
        s.players.spins_in_flight_max = 2;
    })
    .await;
    let flooder = sign_in(&app, 4110).await;
    let other = sign_in(&app, 4111).await;
    let flood: Vec<_> = (0..400)
        .map(|n| {
            let (client, url, token) = (app.client.clone(), app.url("/api/spin"), flooder.token.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", format!("flood-{n}"))
                    .json(&json!({ "betAmount": "0.10" }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap()["code"].as_str().map(str::to_owned))
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, receipt) = spin(&app, &other, "mine", "1.00").await;
    assert_eq!(status, 200, "another player is served during the flood: {receipt}");
    let mut refused = 0;
    for answer in flood {
        match answer.await.unwrap() {
            (200, _) => {}
            (429, Some(code)) if code == "spin_in_progress" => refused += 1,
            other => panic!("the flood got {other:?}: only 200 or 429 spin_in_progress"),
        }
    }
    assert!(refused > 0, "a player's spins beyond the in-flight limit are refused at the door");
}

#[sqlx::test(migrations = "../migrations")]
async fn past_its_in_flight_limit_the_server_sheds_load_at_once_and_probes_still_answer(pool: PgPool) {
    let (app, proxy) = app_behind_proxy(&pool, |s| s.http.in_flight_max = 2).await;
    let read = |id: &'static str| {
        let client = app.service("test-readonly");
        tokio::spawn(async move {
            let response = client.get(&format!("/jackpot/{id}")).await.unwrap();
            response.status().as_u16()
        })
    };
    assert_eq!(read("cekpot-mega").await.unwrap(), 200);
    // Two reads held by a database that stopped answering fill the limit…
    proxy.hang();
    let held = [read("cekpot-mega"), read("caspian-shared")];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // …and the next request is turned away at once, not queued behind them.
    let response = app.get("/api/jackpots?tier=local").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable");
    assert!(body["message"].as_str().unwrap().contains("limit of 2 requests"), "{body}");
    assert!(held.iter().all(|call| !call.is_finished()), "answered while the two were still held");
    // The probes are outside the limit: busy is not dead.
    assert_eq!(app.get("/healthz").await.status(), 200);
    for call in held {
        assert_eq!(call.await.unwrap(), 503, "the held reads fail with the database");
    }
    proxy.resume();
    assert!(crate::helpers::eventually(5, || async { read("cekpot-mega").await.unwrap() == 200 }).await);
}

/// The index of the current `seconds`-long window (what the Redis counters are keyed by).
fn window_index(seconds: u64) -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / seconds
}

/// `count` requests to `path` as client `address` through the apps in turn:
/// how many were served, and the 429s' codes.
async fn requests_as(apps: &[&TestApp], path: &str, address: &str, count: usize) -> (usize, Vec<Value>) {
    let (mut served, mut refused) = (0, Vec::new());
    for n in 0..count {
        let app = apps[n % apps.len()];
        let response = app.client.get(app.url(path)).header("x-real-ip", address).send().await.unwrap();
        match response.status().as_u16() {
            200 => served += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                refused.push(response.json::<Value>().await.unwrap()["code"].clone());
            }
            other => panic!("{path}: {other}"),
        }
    }
    (served, refused)
}

fn rate_limited(settings: &mut server::config::Settings) {
    (settings.http.rate_window_s, settings.http.ip_requests_per_window) = (60, 5);
    settings.http.client_ip_header = Some("x-real-ip".into());
}

#[sqlx::test(migrations = "../migrations")]
async fn one_address_past_its_rate_is_refused_and_others_are_not(pool: PgPool) {
    let app = app_with(&pool, rate_limited).await;
    let (served, refused) = requests_as(&[&app], "/api/jackpots", "203.0.113.7", 12).await;
    assert_eq!(served, 5, "the address's five per window");
    assert!(refused.iter().all(|code| code == "rate_limited"), "{refused:?}");
    assert_eq!(requests_as(&[&app], "/api/jackpots", "203.0.113.8", 1).await.0, 1, "another address");
    assert_eq!(requests_as(&[&app], "/healthz", "203.0.113.7", 10).await.0, 10, "probes are not limited");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_address_rate_holds_across_instances_sharing_redis(pool: PgPool) {
    let shared = |s: &mut server::config::Settings| {
        rate_limited(s);
        s.redis.url = Some(crate::helpers::redis_url().into());
    };
    let (a, b) = (app_with(&pool, shared).await, app_with(&pool, shared).await);
    // An address of its own, so other runs sharing this Redis do not count.
    let address = format!("2001:db8::{:x}", uuid::Uuid::new_v4().as_u128() as u16);
    let before = window_index(60);
    let (served, refused) = requests_as(&[&a, &b], "/api/jackpots", &address, 20).await;
    if window_index(60) == before {
        assert_eq!(served, 5, "five per window across both instances");
    } else {
        assert!(served <= 10, "at most five in each of the two windows: {served}");
    }
    assert!(refused.iter().all(|code| code == "rate_limited"), "{refused:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn one_player_past_its_rate_is_refused_and_others_are_not(pool: PgPool) {
    let app = app_with(&pool, |s| (s.http.rate_window_s, s.players.requests_per_window) = (60, 3)).await;
    let (busy, other) = (sign_in(&app, 4140).await, sign_in(&app, 4141).await);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (status, body) = get(&app, &busy, "/api/wallet").await;
        statuses.push((status, body["code"].as_str().map(str::to_owned)));
    }
    assert_eq!(statuses.iter().filter(|(status, _)| *status == 200).count(), 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| s.0 == 200 || (s.0 == 429 && s.1.as_deref() == Some("rate_limited"))));
    assert_eq!(get(&app, &other, "/api/wallet").await.0, 200, "another player is served");
}

// ---- 11. Work whose caller gave up is not applied later ----------------------

/// A server whose database is behind a proxy the test can cut.
async fn app_behind_proxy(
    pool: &PgPool,
    customize: impl FnOnce(&mut server::config::Settings),
) -> (TestApp, crate::helpers::DatabaseProxy) {
    let proxy = crate::helpers::DatabaseProxy::start(crate::helpers::database_address(pool)).await;
    let app = crate::helpers::spawn_app_with(proxy.pool_like(pool), customize).await;
    (app, proxy)
}

/// `count` contributions of 1.00 to `cekpot-mega` sent at once, keys
/// `<prefix>-<n>`: each answer's status and code, in order.
async fn contribute_at_once(app: &TestApp, prefix: &str, count: usize) -> Vec<(u16, Value)> {
    let calls: Vec<_> = (0..count)
        .map(|n| {
            let (app, key) = (app.service("test-game"), format!("{prefix}-{n}"));
            tokio::spawn(async move {
                let body = provider_bet("p", "1.00");
                let response = app.post("/jackpot/cekpot-mega/contribute", &body, &key).await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.map(|b| b["code"].clone()).unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(count);
    for call in calls {
        answers.push(call.await.unwrap());
    }
    answers
}

#[sqlx::test(migrations = "../migrations")]
async fn contributions_whose_callers_timed_out_are_never_applied_later(pool: PgPool) {
    // One contribution per batch, one batch at a time, callers waiting 1 s.
    let (app, proxy) = app_behind_proxy(&pool, |s| {
        (s.http.request_timeout_ms, s.engine.queue_deadline_ms) = (1_000, 1_000);
        (s.engine.batch_size_max, s.engine.batches_in_flight_max) = (1, 1);
    })
    .await;
    assert_eq!(
        contribute_as(&app, "test-game", "cekpot-mega", "warm", &provider_bet("p", "1.00")).await.0,
        200
    );
    let stopped = std::time::Instant::now();
    proxy.hang();
    // Five callers, one batch at a time: each batch waits for a connection
    // (up to 2 s, the pool's acquire time-out) while the others wait in the
    // queue, and the callers give up after their 1 s.
    let mut gave_up = 0;
    for (status, code) in contribute_at_once(&app, "gone", 5).await {
        match status {
            408 => gave_up += 1,
            503 => {} // a batch that failed in time
            other => panic!("{other} {code}: only 408 or 503 while the database does not answer"),
        }
    }
    assert!(gave_up >= 3, "callers gave up with requests still queued ({gave_up})");
    // The database answers again after the batches being written failed,
    // while abandoned ones are still queued.
    tokio::time::sleep(std::time::Duration::from_millis(2_500).saturating_sub(stopped.elapsed())).await;
    proxy.resume();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let applied =
        scalar(&pool, "select count(*) from jackpot_contributions where idempotency_key like 'gone-%'").await;
    assert_eq!(applied, 0, "nothing whose caller had gone was written");
    // The caller's retry, with its key, is applied — once.
    for _ in 0..2 {
        let (status, receipt) =
            contribute_as(&app, "test-game", "cekpot-mega", "gone-3", &provider_bet("p", "1.00")).await;
        assert_eq!(status, 200, "{receipt}");
    }
    let applied =
        scalar(&pool, "select count(*) from jackpot_contributions where idempotency_key like 'gone-%'").await;
    assert_eq!(applied, 1);
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn with_postgres_down_a_failed_batch_answers_everyone_at_once(pool: PgPool) {
    // One batch of twenty; callers wait the default 10 s.
    let (app, proxy) = app_behind_proxy(&pool, |s| s.engine.batch_window_us = 200_000).await;
    assert_eq!(
        contribute_as(&app, "test-game", "cekpot-mega", "warm", &provider_bet("p", "1.00")).await.0,
        200
    );
    proxy.hang();
    // Retrying each alone against a database that is down would keep them
    // for the acquire time-out each, past their callers' 10 s.
    for answer in contribute_at_once(&app, "down", 20).await {
        assert_eq!(answer, (503, json!("service_unavailable")), "told to retry, at once");
    }
    proxy.resume();
    assert_eq!(
        scalar(&pool, "select count(*) from jackpot_contributions where idempotency_key like 'down-%'").await,
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_crowd_reading_the_public_pages_costs_the_database_nothing_more(pool: PgPool) {
    // Periods long enough that the whole test is within one.
    let (app, proxy) = app_behind_proxy(&pool, |s| s.http.public_cache_ms = 60_000).await;
    let paths = ["/api/jackpots", "/api/jackpots?tier=mega&limit=1", "/", "/readyz"];
    let mut first = Vec::new();
    for path in paths {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        first.push(response.text().await.unwrap());
    }
    // The database stops answering: a crowd of players on the lobby and the
    // list, and probes, are all answered from the one read each made.
    proxy.hang();
    let crowd: Vec<_> = (0..200)
        .map(|n| {
            let (client, url, path) = (app.client.clone(), app.url(paths[n % 4]), n % 4);
            tokio::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                (path, response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    for call in crowd {
        let (path, status, body) = call.await.unwrap();
        assert_eq!(status, 200, "{}", paths[path]);
        if paths[path].starts_with("/api/") {
            assert_eq!(body, first[path], "{}", paths[path]);
        }
    }
    let mega: Value = serde_json::from_str(&first[1]).unwrap();
    assert_eq!(mega["jackpots"].as_array().unwrap().len(), 1, "the limit applies to the kept list");
    proxy.resume();
}

async fn mega_value(app: &TestApp) -> String {
    let list: Value = app.get("/api/jackpots?tier=mega").await.json().await.unwrap();
    list["jackpots"][0]["value"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn the_public_list_is_never_older_than_its_period(pool: PgPool) {
    let app = app_with(&pool, |s| s.http.public_cache_ms = 300).await;
    let before = mega_value(&app).await;
    let (status, receipt) =
        contribute_as(&app, "test-game", "cekpot-mega", "grow-1", &provider_bet("p", "100.00")).await;
    assert_eq!(status, 200, "{receipt}");
    let grown = crate::helpers::eventually(5, || async { mega_value(&app).await != before }).await;
    assert!(grown, "the pool's new value shows within the period");
}

// ---- 13. A Redis outage degrades, it does not take the players down ---------

#[sqlx::test(migrations = "../migrations")]
async fn with_redis_down_players_still_play_and_signed_calls_fail_closed(pool: PgPool) {
    // Port 1 on loopback: nothing listens there, the connection is refused.
    let app = app_with(&pool, |s| s.redis.url = Some("redis://127.0.0.1:1".to_owned().into())).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200, "the player API needs only PostgreSQL");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "status": "degraded", "postgres": "ok", "redis": "down" }));
    let player = sign_in(&app, 4113).await;
    let (status, receipt) = spin(&app, &player, "k-1", "1.00").await;
    assert_eq!(status, 200, "{receipt}");
    // A signed call cannot have its request nonce checked on every instance: refused.
    let response = app.service("test-readonly").get("/jackpots").await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable");
}

// ---- 12. Production refuses unsafe settings ------------------------------------

/// Starts the real binary in production with `env` over a safe setup, and
/// answers what it printed when it exited (it must exit, within 30 s).
fn production_start(pool: &PgPool, env: &[(&str, &str)]) -> (bool, String) {
    use crate::helpers::{database_url, free_port, test_keys_env, TEST_JWT_SECRET};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .env("DATABASE_URL", database_url(pool))
        .env_remove("REDIS_URL")
        .env("CEKPOT_HTTP__ADDR", format!("127.0.0.1:{}", free_port()))
        .env("CEKPOT_DEPLOYMENT__ENVIRONMENT", "production")
        .env("CEKPOT_DEPLOYMENT__SINGLE_INSTANCE", "true")
        .env("CEKPOT_AUTH__JWT_SECRET", TEST_JWT_SECRET)
        .env("CEKPOT_HTTP__METRICS_TOKEN", crate::helpers::TEST_METRICS_TOKEN)
        .env("CEKPOT_SERVICE__KEYS", test_keys_env())
        .env("CEKPOT_LOG__FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        if value.is_empty() {
            command.env_remove(name);
        } else {
            command.env(name, value);
        }
    }
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            return (true, String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let printed =
        String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    (output.status.success(), printed)
}

#[sqlx::test(migrations = "../migrations")]
async fn production_refuses_to_start_with_unsafe_settings_and_names_them(pool: PgPool) {
    let weak = r#"[{id="p",secret="short",role="game_service"}]"#;
    let shared = r#"[{id="a",secret="one-secret-shared-by-two-keys-000000",role="admin"},{id="b",secret="one-secret-shared-by-two-keys-000000",role="readonly"}]"#;
    let empty = r#"[{id="e",secret="",role="admin"}]"#;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("CEKPOT_AUTH__JWT_SECRET", "")], "auth.jwt_secret"),
        (&[("CEKPOT_HTTP__METRICS_TOKEN", "")], "http.metrics_token"),
        (&[("CEKPOT_DEPLOYMENT__SINGLE_INSTANCE", "")], "redis.url"),
        (&[("CEKPOT_SERVICE__KEYS", weak)], "the secret of key \"p\" is 5 bytes"),
        (&[("CEKPOT_SERVICE__KEYS", shared)], "share one secret"),
        (&[("CEKPOT_SERVICE__KEYS", empty)], "the secret of key \"e\" is 0 bytes"),
    ];
    for (env, named) in cases {
        let (ok, printed) = production_start(&pool, env);
        assert!(!ok, "started with {env:?}");
        assert!(printed.contains(named), "{env:?}: expected {named:?} in:\n{printed}");
    }
}

// ---- 14. Another provider's winner is masked ------------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_claim_that_lost_to_another_provider_does_not_learn_its_winner(pool: PgPool) {
    let app = app_with(&pool, second_provider).await;
    crate::service::provider_jackpot(&pool).await;
    let claim = json!({ "playerId": "winner-7781", "sessionId": "session-a", "cycle": 1 });
    let response = app.service("test-game").post("/jackpot/provider-pot/award", &claim, "a-1").await.unwrap();
    assert_eq!(response.status(), 200);
    // Provider B's claim on the same cycle lost: it sees that, not who won.
    let theirs = json!({ "playerId": "b-player", "sessionId": "session-b", "cycle": 1 });
    let response =
        app.service("test-game-b").post("/jackpot/provider-pot/award", &theirs, "b-1").await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "cycle_already_awarded");
    let award = &body["details"]["award"];
    assert_eq!(award["playerId"], "wi…81", "{body}");
    assert_eq!(award["sessionId"], Value::Null, "{body}");
    // The winner's own provider, losing a second claim, still sees its player.
    let again = json!({ "playerId": "other", "sessionId": "session-c", "cycle": 1 });
    let response = app.service("test-game").post("/jackpot/provider-pot/award", &again, "a-2").await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["details"]["award"]["playerId"], "winner-7781", "{body}");
}

// ---- 14. Refused requests create no ledger accounts --------------------------

#[sqlx::test(migrations = "../migrations")]
async fn refused_requests_create_no_ledger_accounts(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    crate::service::provider_jackpot(&pool).await;
    let accounts = || scalar(&pool, "select count(*) from ledger_accounts");
    let before = accounts().await;
    // Refused contributions, each naming a new player (and one a currency no
    // jackpot has): nothing of them is booked, so no account is opened.
    for n in 0..20 {
        let mut body = provider_bet(&format!("nobody-{n}"), "0.01");
        if n == 0 {
            body["currency"] = json!("XYZ");
        }
        let (status, answer) =
            contribute_as(&app, "test-game", "provider-pot", &format!("r-{n}"), &body).await;
        assert_eq!(status, 422, "{answer}");
    }
    // A claim the jackpot refuses (no such cycle open).
    let claim = json!({ "playerId": "claimer", "sessionId": "s-1", "cycle": 7 });
    let response =
        app.service("test-game").post("/jackpot/provider-pot/award", &claim, "claim-7").await.unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(accounts().await, before, "refused requests opened accounts");

    // An accepted contribution books against its game's clearing account,
    // and no wallet is opened until a win pays one.
    let (status, receipt) =
        contribute_as(&app, "test-game", "provider-pot", "ok-1", &provider_bet("somebody", "1.00")).await;
    assert_eq!(status, 200, "{receipt}");
    let wallets = "select count(*) from ledger_accounts where kind = 'external_wallet'";
    assert_eq!(scalar(&pool, wallets).await, 0);
    let claim = json!({ "playerId": "somebody", "sessionId": "s-1", "cycle": 1 });
    let response =
        app.service("test-game").post("/jackpot/provider-pot/award", &claim, "claim-1").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(scalar(&pool, wallets).await, 1, "the winner's wallet, opened to pay the award");
    assert_books_balance(&pool).await;
}

// ---- 14. Metrics behind a token; security headers ---------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn metrics_need_their_token(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "metrics_token_required", "{body}");
    let wrong = app.client.get(app.url("/metrics")).bearer_auth("not-it").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(crate::helpers::TEST_METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("cekpot_"), "the exposition itself");
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_and_answers_carry_the_security_headers(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    for path in ["/", "/slot", "/api/jackpots", "/no-such-page"] {
        let response = app.get(path).await;
        let header = |name: &str| {
            response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "strict-origin-when-cross-origin", "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'self' https://web.telegram.org"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert_eq!(header("strict-transport-security"), "", "{path}: no HSTS unless behind TLS");
    }
    let tls = app_with(&pool, |s| s.http.hsts = true).await;
    let response = tls.get("/").await;
    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_spin_batch_that_meets_a_stored_house_key_is_not_failed(pool: PgPool) {
    // No caller can send an `@house` key; should one be stored all the same
    // (here written straight into the table), the spin still goes through.
    let app = app_with(&pool, |_| {}).await;
    let player = sign_in(&app, 4121).await;
    sqlx::query(
        "insert into jackpot_contributions (jackpot_id, cycle_number, game_id, player_id, origin, idempotency_key,
                 request_hash, bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                 value_after_micros, batch_id)
         select 'cekpot-mega', 1, 'cekpot-slot', 'someone', '@house', 'spin:' || k, '\\x00', 1, 0, 0, 0, 0, 0
           from generate_series(1, 5) k",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, receipt) = spin(&app, &player, "k-1", "1.00").await;
    assert_eq!(status, 200, "{receipt}");
    let fed = fed_jackpots(&receipt);
    assert_eq!(
        fed,
        ["caspian-shared", "lucky-sevens"],
        "the squatted pool's share is refused, the spin is not"
    );
    assert_eq!(get(&app, &player, "/api/wallet").await.1["balance"], receipt["balance"]);
}

// ---- 14. Meters that cannot overflow ------------------------------------------

#[sqlx::test(migrations = "../migrations")]
async fn a_jackpots_meters_keep_counting_past_the_64_bit_range(pool: PgPool) {
    let app = app_with(&pool, |_| {}).await;
    crate::service::provider_jackpot(&pool).await;
    // A long-lived pool whose running cycle has already metered bets and
    // contributions one micro-unit short of the largest 64-bit integer.
    let near_max = i64::MAX - 1;
    sqlx::query(
        "update jackpot_cycles set bets_micros = $1, contributions_micros = $1, pool_shares_micros = $1,
                reserve_shares_micros = $1
          where jackpot_id = 'provider-pot' and closed_at is null",
    )
    .bind(near_max)
    .execute(&pool)
    .await
    .unwrap();
    // One more bet of 2.00 is taken, not refused for the meter's sake.
    let (status, receipt) =
        contribute_as(&app, "test-game", "provider-pot", "past-max", &provider_bet("meter-player", "2.00"))
            .await;
    assert_eq!(status, 200, "{receipt}");
    // The meters went on counting exactly: 9,223,372,036,854.775806 + 2.00,
    // and the contribution (1 % of 2.00) added to the rest.
    let detail: Value =
        app.service("test-readonly").get("/jackpot/provider-pot").await.unwrap().json().await.unwrap();
    let meters = &detail["meters"];
    assert_eq!(meters["qualifyingBetAmount"], "9223372036856.775806", "{detail}");
    assert_eq!(meters["contributions"], "9223372036854.795806", "{detail}");
    let (pool_share, reserve_share): (String, String) = sqlx::query_as(
        "select pool_shares_micros::text, reserve_shares_micros::text from jackpot_cycles
          where jackpot_id = 'provider-pot' and closed_at is null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // 0.02 contributed: 80 % (0.016) to the pool, 20 % (0.004) to the reserve.
    assert_eq!(pool_share, "9223372036854791806");
    assert_eq!(reserve_share, "9223372036854779806");
    assert_books_balance(&pool).await;
}
