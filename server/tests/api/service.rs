//! The jackpot service API: contributions, awards, idempotency, and the money
//! each of them moves.

use domain::fairness::{Commitment, Salt};
use domain::jackpot::{Rules, Status, Tier, TriggerMode};
use domain::money::{Amount, Currency, Rate};
use serde_json::{json, Value};
use server::db::jackpots::{self, Jackpot, NewJackpot};
use sqlx::PgPool;

use crate::helpers::{spawn_app, TestApp};

pub struct JackpotSpec {
    pub id: &'static str,
    pub trigger: TriggerMode,
    pub seed: &'static str,
    pub max: &'static str,
    pub rate_ppm: u32,
    pub reserve_ppm: u32,
    pub min_bet: &'static str,
}

/// Must-drop between 1.00 and 3.00 at 5 % (10 % of it to the reserve): bets
/// of 1.00 drop it again and again.
pub const STORM: JackpotSpec = JackpotSpec {
    id: "storm",
    trigger: TriggerMode::MustDrop,
    seed: "1.00",
    max: "3.00",
    rate_ppm: 50_000,
    reserve_ppm: 100_000,
    min_bet: "0.01",
};

/// The Mini App's play money in every test server (`money.currency`).
pub const CHIPS: &str = "CHIPS";

/// Creates a mega-tier jackpot in [`CHIPS`] (every game playing chips feeds
/// it, the Mini App's slot too) with its first cycle.
pub async fn create_jackpot(pool: &PgPool, spec: JackpotSpec) {
    create_jackpot_in(pool, CHIPS, spec).await
}

/// As [`create_jackpot`], in `currency`.
pub async fn create_jackpot_in(pool: &PgPool, currency: &str, spec: JackpotSpec) {
    let rules = Rules::new(
        Rate::from_ppm(spec.rate_ppm).unwrap(),
        Rate::from_ppm(spec.reserve_ppm).unwrap(),
        spec.seed.parse().unwrap(),
        spec.max.parse().unwrap(),
        spec.min_bet.parse().unwrap(),
        spec.trigger,
    )
    .unwrap();
    let currency: Currency = currency.parse().unwrap();
    let mut tx = pool.begin().await.unwrap();
    jackpots::insert(&mut tx, &NewJackpot { id: spec.id, name: spec.id, tier: Tier::Mega, currency, rules })
        .await
        .unwrap();
    let jackpot = Jackpot {
        id: spec.id.into(),
        name: spec.id.into(),
        tier: Tier::Mega,
        currency,
        rules,
        status: Status::Active,
    };
    let accounts = server::db::ledger::Accounts::new(pool.clone());
    let actor = server::audit::Actor::system("test");
    let (_, created) = server::engine::open_first_cycle(&mut tx, &accounts, &jackpot, &actor).await.unwrap();
    server::audit::append(&mut tx, &[created]).await.unwrap();
    tx.commit().await.unwrap();
}

/// Contributes as a game service (the `test-game` key).
pub async fn contribute(app: &TestApp, jackpot: &str, key: &str, body: Value) -> (u16, Value) {
    let path = format!("/jackpot/{jackpot}/contribute");
    let response = app.service("test-game").post(&path, &body, key).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub async fn claim(app: &TestApp, jackpot: &str, key: &str, body: Value) -> (u16, Value) {
    post_claim(app.service("test-game"), format!("/jackpot/{jackpot}/award"), key.to_owned(), body).await
}

/// Owns its arguments, so it can be spawned many times at once.
async fn post_claim(client: cekpot_client::Client, path: String, key: String, body: Value) -> (u16, Value) {
    let response = client.post(&path, &body, &key).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub fn bet(game: &str, amount: &str) -> Value {
    json!({ "gameId": game, "playerId": "player-1", "betAmount": amount, "currency": "CHIPS" })
}

pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Every balance in the ledger sums to zero, and every pool account holds
/// exactly its open cycle's value.
pub async fn assert_books_balance(pool: &PgPool) {
    assert_eq!(scalar(pool, "select coalesce(sum(balance_micros), 0)::bigint from ledger_accounts").await, 0);
    let mismatched = scalar(
        pool,
        "select count(*) from ledger_accounts a
           join jackpot_cycles c on c.jackpot_id = a.owner and c.closed_at is null
          where a.kind = 'jackpot_pool' and a.balance_micros <> c.value_micros",
    )
    .await;
    assert_eq!(mismatched, 0, "pool accounts match their cycles");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_contribution_takes_the_configured_share_and_grows_the_pool(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (status, body) = contribute(&app, "cekpot-mega", "k-1", bet("test-slot", "2.50")).await;
    assert_eq!(status, 200, "{body}");
    // 0.15 % of 2.50 = 0.00375; a tenth of it (0.000375) to the reserve.
    assert_eq!(body["contribution"], "0.00375");
    assert_eq!(body["reserveShare"], "0.000375");
    assert_eq!(body["poolShare"], "0.003375");
    assert_eq!(body["value"], "10000.003375");
    assert_eq!(body["cycle"], 1);
    assert_eq!(body["award"], Value::Null);

    let detail: Value =
        app.service("test-readonly").get("/jackpot/cekpot-mega").await.unwrap().json().await.unwrap();
    assert_eq!(detail["value"], "10000.003375");
    assert_eq!(detail["meters"]["qualifyingBets"], 1);
    assert_eq!(detail["meters"]["contributions"], "0.00375");
    assert_eq!(detail["commitment"].as_str().unwrap().len(), 64);
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_key_replays_the_answer_and_a_different_body_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let first = contribute(&app, "cekpot-mega", "again", bet("test-slot", "10")).await;
    let second = contribute(&app, "cekpot-mega", "again", bet("test-slot", "10")).await;
    assert_eq!(first.0, 200);
    assert_eq!(first, second, "a replay answers exactly what the first call answered");

    let (status, body) = contribute(&app, "cekpot-mega", "again", bet("test-slot", "11")).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(scalar(&pool, "select count(*) from jackpot_contributions").await, 1);
    assert_eq!(
        scalar(&pool, "select value_micros from jackpot_cycles where jackpot_id = 'cekpot-mega'").await,
        10_000_013_500
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_contributions_get_a_stable_code_and_write_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let with = |field: &str, value: Value| {
        let mut body = bet("test-slot", "1.00");
        body[field] = value;
        body
    };
    let table: Vec<(&str, Value, u16, &str)> = vec![
        ("no-such-jackpot", bet("test-slot", "1.00"), 404, "jackpot_not_found"),
        ("cekpot-mega", with("currency", json!("USD")), 422, "currency_mismatch"),
        ("cekpot-mega", with("currency", json!("euro")), 422, "invalid_body"),
        ("lucky-sevens", bet("caspian-reels", "1.00"), 422, "game_not_eligible"),
        ("cekpot-mega", bet("test-slot", "0"), 422, "bet_not_positive"),
        ("cekpot-mega", bet("test-slot", "-5.00"), 422, "bet_not_positive"),
        ("cekpot-mega", bet("test-slot", "0.10"), 422, "below_minimum_bet"),
        ("cekpot-mega", bet("test-slot", "1000000.01"), 422, "bet_too_large"),
        ("cekpot-mega", bet("test-slot", "abc"), 422, "invalid_body"),
        ("cekpot-mega", bet("test-slot", "1.0000001"), 422, "invalid_body"),
        ("cekpot-mega", bet("test-slot", "99999999999999999999"), 422, "invalid_body"),
        ("cekpot-mega", with("betAmount", json!(2.5)), 422, "invalid_body"),
        ("cekpot-mega", with("extra", json!(true)), 422, "invalid_body"),
        ("cekpot-mega", with("playerId", json!("")), 422, "invalid_body"),
        ("cekpot-mega", with("gameId", json!("a b")), 422, "invalid_body"),
    ];
    for (index, (jackpot, body, status, code)) in table.into_iter().enumerate() {
        let (actual, answer) = contribute(&app, jackpot, &format!("bad-{index}"), body.clone()).await;
        assert_eq!((actual, answer["code"].as_str()), (status, Some(code)), "{jackpot} {body}");
    }

    let body = serde_json::to_vec(&bet("test-slot", "1")).unwrap();
    let no_key = app
        .service("test-game")
        .send(reqwest::Method::POST, "/jackpot/cekpot-mega/contribute", Some(body), None)
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    assert_eq!(no_key.json::<Value>().await.unwrap()["code"], "missing_idempotency_key");
    let (status, answer) = contribute(&app, "cekpot-mega", &"k".repeat(129), bet("test-slot", "1")).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("invalid_idempotency_key")));

    assert_eq!(scalar(&pool, "select count(*) from jackpot_contributions").await, 0);
    assert_eq!(
        scalar(&pool, "select count(*) from ledger_transfers where kind like 'contribution%'").await,
        0
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_paused_jackpot_takes_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    sqlx::query("update jackpots set status = 'paused' where id = 'cekpot-mega'")
        .execute(&pool)
        .await
        .unwrap();
    let (status, body) = contribute(&app, "cekpot-mega", "p-1", bet("test-slot", "5")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("jackpot_paused")));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_must_drop_pool_is_won_by_the_contribution_that_crosses_its_drop_point(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let spec = JackpotSpec {
        id: "quick-drop",
        trigger: TriggerMode::MustDrop,
        seed: "1.00",
        max: "2.00",
        rate_ppm: 1_000_000,
        reserve_ppm: 0,
        min_bet: "0.01",
    };
    create_jackpot(&pool, spec).await;
    let commitment: String = sqlx::query_scalar(
        "select commitment from jackpot_cycles where jackpot_id = 'quick-drop' and cycle_number = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let mut award = None;
    let mut previous_value: Amount = "1.00".parse().unwrap();
    for n in 0..101 {
        let (status, body) =
            contribute(&app, "quick-drop", &format!("drop-{n}"), bet("test-slot", "0.01")).await;
        assert_eq!(status, 200, "{body}");
        if !body["award"].is_null() {
            award = Some((n, previous_value, body));
            break;
        }
        previous_value = body["value"].as_str().unwrap().parse().unwrap();
    }
    let (n, value_before, body) = award.expect("the pool drops before passing its maximum");
    let award = &body["award"];
    let drop_point: Amount = award["dropPoint"].as_str().unwrap().parse().unwrap();
    let salt: Salt = award["salt"].as_str().unwrap().parse().unwrap();
    let awarded: Amount = award["awardedAmount"].as_str().unwrap().parse().unwrap();
    assert!(value_before <= drop_point && drop_point < awarded, "contribution {n} crossed the drop point");
    assert_eq!(
        awarded,
        body["value"].as_str().unwrap().parse().unwrap(),
        "the award is the value at the win"
    );
    assert_eq!(award["commitment"], commitment.as_str());
    assert!(
        commitment.parse::<Commitment>().unwrap().verifies(drop_point, &salt),
        "the revealed pair matches"
    );
    assert_eq!(award["contributionId"], body["contributionId"]);
    assert_eq!(award["playerId"], "player-1");

    let detail: Value =
        app.service("test-readonly").get("/jackpot/quick-drop").await.unwrap().json().await.unwrap();
    assert_eq!(
        (detail["cycle"].as_i64(), detail["value"].as_str()),
        (Some(2), Some("1.00")),
        "the next cycle starts at its seed"
    );
    assert_ne!(detail["commitment"], commitment.as_str(), "with a fresh commitment");
    assert_eq!(detail["meters"]["hits"], 1);
    assert_eq!(detail["lastAwards"].as_array().unwrap().len(), 1);
    assert_eq!(detail["lastAwards"][0]["amount"], award["awardedAmount"]);
    assert_eq!(detail["lastAwards"][0]["winner"], "pl…-1", "winners are masked");
    assert_eq!(scalar(&pool, "select count(*) from jackpot_awards").await, 1);
    let wallet = scalar(
        &pool,
        "select balance_micros from ledger_accounts where kind = 'external_wallet' and owner = 'test-game/player-1'",
    )
    .await;
    assert_eq!(Amount::from_micros(wallet), awarded);
    assert_books_balance(&pool).await;
}

pub async fn provider_jackpot(pool: &PgPool) {
    let spec = JackpotSpec {
        id: "provider-pot",
        trigger: TriggerMode::Provider,
        seed: "50.00",
        max: "500.00",
        rate_ppm: 10_000,
        reserve_ppm: 200_000,
        min_bet: "0.10",
    };
    create_jackpot(pool, spec).await;
}

/// The provider pot with cycle 1 awarded to `p-1` after one bet of 100
/// (50.00 seed + 0.80): answers the award.
pub async fn awarded_provider_pot(app: &TestApp, pool: &PgPool) -> Value {
    provider_jackpot(pool).await;
    let (status, receipt) = contribute(app, "provider-pot", "c-1", bet("any-game", "100")).await;
    assert_eq!(status, 200, "{receipt}");
    let (status, award) =
        claim(app, "provider-pot", "a-1", json!({ "playerId": "p-1", "sessionId": "s-1", "cycle": 1 })).await;
    assert_eq!(status, 200, "{award}");
    award
}

#[sqlx::test(migrations = "../migrations")]
async fn fifty_simultaneous_claims_on_one_cycle_pay_exactly_one(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    contribute(&app, "provider-pot", "c-1", bet("any-game", "100")).await;
    let path = "/jackpot/provider-pot/award".to_owned();
    let claims = (0..50).map(|n| {
        let body = json!({ "playerId": format!("player-{n}"), "sessionId": format!("s-{n}"), "cycle": 1 });
        post_claim(app.service("test-game"), path.clone(), format!("claim-{n}"), body)
    });
    let answers = futures_join_all(claims).await;
    let winners: Vec<&Value> =
        answers.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let winner = winners[0];
    // seed 50.00 + pool share of one bet of 100: 1 % = 1.00, less 20 % to the reserve.
    assert_eq!(winner["awardedAmount"], "50.80");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!((*status, body["code"].as_str()), (409, Some("cycle_already_awarded")));
        assert_eq!(&body["details"]["award"], winner, "the 409 names the award that won");
    }
    assert_eq!(scalar(&pool, "select count(*) from jackpot_awards").await, 1);
    assert_eq!(scalar(&pool, "select count(*) from jackpot_award_claims").await, 50);
    assert_eq!(scalar(&pool, "select count(*) from jackpot_award_claims where outcome = 'won'").await, 1);
    let all: Value = app.service("test-readonly").get("/jackpots").await.unwrap().json().await.unwrap();
    let jackpots = all["jackpots"].as_array().unwrap();
    assert_eq!(jackpots.len(), 4, "the three demo jackpots and this one");
    for jackpot in jackpots {
        let expected = if jackpot["id"] == "provider-pot" { 1 } else { 0 };
        assert_eq!(jackpot["lastAwards"].as_array().unwrap().len(), expected, "{}", jackpot["id"]);
    }
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn one_key_sent_fifty_times_at_once_pays_once_and_answers_alike(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    let body = json!({ "playerId": "player-7", "sessionId": "s-7", "cycle": 1 });
    let path = "/jackpot/provider-pot/award".to_owned();
    let answers =
        futures_join_all((0..50).map(|_| {
            post_claim(app.service("test-game"), path.clone(), "same-key".to_owned(), body.clone())
        }))
        .await;
    assert!(answers.iter().all(|answer| answer == &answers[0]), "50 identical answers");
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[0].1["awardedAmount"], "50.00");
    assert_eq!(scalar(&pool, "select count(*) from jackpot_awards").await, 1);
    let (status, next) =
        claim(&app, "provider-pot", "next-cycle", json!({ "playerId": "p", "sessionId": "s", "cycle": 3 }))
            .await;
    assert_eq!((status, next["code"].as_str()), (409, Some("cycle_not_open")));
    assert_eq!(next["details"]["openCycle"], 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_provider_cannot_award_a_must_drop_jackpot(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (status, body) =
        claim(&app, "cekpot-mega", "m-1", json!({ "playerId": "p-1", "sessionId": "s", "cycle": 1 })).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("award_not_allowed")));
    let (status, body) =
        claim(&app, "nope", "m-2", json!({ "playerId": "p-1", "sessionId": "s", "cycle": 1 })).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("jackpot_not_found")));
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
