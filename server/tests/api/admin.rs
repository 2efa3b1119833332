//! Configuration changes: the running cycle keeps its rules, the next cycle
//! takes the new ones, name and status change at once, and every change is
//! recorded. Bad edits change nothing.

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{spawn_app, TestApp};
use crate::service::{
    assert_books_balance, awarded_provider_pot, bet, claim, contribute, provider_jackpot, scalar,
};

pub async fn configure(app: &TestApp, jackpot: &str, body: Value) -> (u16, Value) {
    let response =
        app.service("test-admin").patch(&format!("/admin/jackpots/{jackpot}"), &body).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn show(app: &TestApp, jackpot: &str) -> Value {
    let response = app.service("test-readonly").get(&format!("/jackpot/{jackpot}")).await.unwrap();
    response.json().await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn new_rules_wait_for_the_next_cycle(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    // seed 50.00, max 500.00, 1 % of each bet, 20 % of that to the reserve.
    provider_jackpot(&pool).await;

    let (status, change) = configure(
        &app,
        "provider-pot",
        json!({ "contributionRatePpm": 20_000, "seed": "80.00", "maxValue": "900.00",
                "reason": "raise the rate for the winter promotion" }),
    )
    .await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["runningCycle"], 1);
    assert_eq!(change["appliesFromCycle"], 2);
    assert_eq!(change["rules"]["contributionRatePpm"], 20_000);
    assert_eq!(change["rules"]["seed"], "80.00");
    assert_eq!(change["runningCycleRules"]["contributionRatePpm"], 10_000);
    assert_eq!(change["runningCycleRules"]["seed"], "50.00");

    // Cycle 1 still takes 1 %: 1.00 of a 100 bet, 0.80 of it to the pool.
    let (status, receipt) = contribute(&app, "provider-pot", "c-1", bet("any-game", "100")).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!((receipt["cycle"].as_i64(), receipt["contribution"].as_str()), (Some(1), Some("1.00")));
    assert_eq!(receipt["value"], "50.80");
    let view = show(&app, "provider-pot").await;
    assert_eq!(
        (view["contributionRatePpm"].as_i64(), view["maxValue"].as_str()),
        (Some(10_000), Some("500.00"))
    );

    // The award closes cycle 1; cycle 2 opens at the new seed and takes 2 %.
    let (status, award) =
        claim(&app, "provider-pot", "a-1", json!({ "playerId": "p-1", "sessionId": "s-1", "cycle": 1 }))
            .await;
    assert_eq!(status, 200, "{award}");
    assert_eq!(award["awardedAmount"], "50.80");
    let view = show(&app, "provider-pot").await;
    assert_eq!((view["cycle"].as_i64(), view["value"].as_str()), (Some(2), Some("80.00")));
    assert_eq!(
        (view["contributionRatePpm"].as_i64(), view["maxValue"].as_str()),
        (Some(20_000), Some("900.00"))
    );
    let (status, receipt) = contribute(&app, "provider-pot", "c-2", bet("any-game", "100")).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!((receipt["cycle"].as_i64(), receipt["contribution"].as_str()), (Some(2), Some("2.00")));
    assert_eq!(receipt["value"], "81.60");

    let (changed_by, before, after): (String, Value, Value) = sqlx::query_as(
        "select changed_by, before, after from jackpot_changes where jackpot_id = 'provider-pot'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changed_by, "test-admin", "the signing key is who changed it");
    assert_eq!(
        (before["contributionRatePpm"].as_i64(), after["contributionRatePpm"].as_i64()),
        (Some(10_000), Some(20_000))
    );
    assert_eq!((before["seed"].as_str(), after["seed"].as_str()), (Some("50.00"), Some("80.00")));
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_pause_applies_at_once_and_is_recorded(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    let (status, change) =
        configure(&app, "provider-pot", json!({ "status": "paused", "reason": "suspected fraud" })).await;
    assert_eq!(status, 200, "{change}");
    assert_eq!((change["status"].as_str(), change["appliesFromCycle"].is_null()), (Some("paused"), true));
    let (status, body) = contribute(&app, "provider-pot", "c-1", bet("any-game", "100")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("jackpot_paused")));
    let (status, _) =
        configure(&app, "provider-pot", json!({ "status": "active", "reason": "cleared" })).await;
    assert_eq!(status, 200);
    let (status, _) = contribute(&app, "provider-pot", "c-1", bet("any-game", "100")).await;
    assert_eq!(status, 200);
    assert_eq!(scalar(&pool, "select count(*) from jackpot_changes").await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_edits_get_a_stable_code_and_change_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    let cases = [
        (json!({ "seed": "600.00", "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "contributionRatePpm": 0, "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "reserveSharePpm": 1_000_001, "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "maxValue": "-1", "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "maxValue": "1000000001", "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "name": "", "reason": "r" }), 422, "invalid_jackpot_config"),
        (json!({ "seed": "60.00", "reason": "  " }), 422, "invalid_jackpot_config"),
        (json!({ "seed": "50.00", "reason": "no change" }), 422, "invalid_jackpot_config"),
        (json!({ "seed": "60.00" }), 422, "invalid_body"),
        (json!({ "seed": "60.00", "reason": "r", "currency": "USD" }), 422, "invalid_body"),
        (json!({ "status": "closed", "reason": "r" }), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = configure(&app, "provider-pot", body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{body}");
    }
    let (status, answer) = configure(&app, "no-such-pot", json!({ "seed": "1", "reason": "r" })).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("jackpot_not_found")));
    assert_eq!(scalar(&pool, "select count(*) from jackpot_changes").await, 0);
    let view = show(&app, "provider-pot").await;
    assert_eq!((view["seed"].as_str(), view["status"].as_str()), (Some("50.00"), Some("active")));
}

/// The value of an unlabelled sample in Prometheus' text format.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_mismatch_ratio_of_the_latest_reconciliation_is_a_metric(pool: PgPool) {
    // Its own process: the metrics recorder is per process, and other tests'
    // servers in this one would share it.
    let port = crate::helpers::free_port();
    let mut server = crate::helpers::start_server_binary(&pool, port);
    crate::helpers::wait_until_serving(port).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let admin = crate::helpers::service_client(&base, "test-admin");
    let reconcile = || async {
        let response = admin.send(reqwest::Method::POST, "/admin/reconciliations", None, None).await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let scrape = || async {
        let response = client
            .get(format!("{base}/metrics"))
            .bearer_auth(crate::helpers::TEST_METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        response.text().await.unwrap()
    };

    let report = reconcile().await;
    assert_eq!(report["mismatchRatioPpm"], 0, "{report}");
    let metrics = scrape().await;
    assert_eq!(sample(&metrics, "cekpot_reconciliation_mismatch_ratio"), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, "cekpot_reconciliation_mismatches"), Some(0.0));

    // Someone edits a pool behind the engine's back: the next run sees it.
    sqlx::query("update jackpot_cycles set value_micros = value_micros + 1 where jackpot_id = 'cekpot-mega'")
        .execute(&pool)
        .await
        .unwrap();
    let report = reconcile().await;
    let (mismatches, checks) =
        (report["mismatches"].as_array().unwrap().len(), report["checks"].as_i64().unwrap());
    assert!(mismatches >= 2, "the cycle's value and the pool's balance disagree: {report}");
    let metrics = scrape().await;
    assert_eq!(sample(&metrics, "cekpot_reconciliation_mismatches"), Some(mismatches as f64));
    let ratio = sample(&metrics, "cekpot_reconciliation_mismatch_ratio").unwrap();
    let ppm = report["mismatchRatioPpm"].as_i64().unwrap();
    assert_eq!(ppm, mismatches as i64 * 1_000_000 / checks);
    assert_eq!(ratio, server::metrics::ratio(ppm));
    assert!(ratio > 0.0);
    assert!(metrics.contains("cekpot_reconciliation_runs_total{trigger=\"admin\"} 2"), "{metrics}");
    let _ = server.kill();
    let _ = server.wait();
}

async fn roll_back(app: &TestApp, award_id: &str, body: Value) -> (u16, Value) {
    let path = format!("/admin/awards/{award_id}/rollback");
    let response = app.service("test-admin").post(&path, &body, "unused").await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn an_award_is_rolled_back_once_by_a_compensating_transfer(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let award = awarded_provider_pot(&app, &pool).await;
    let award_id = award["awardId"].to_string();
    let wallet = "select balance_micros from ledger_accounts where kind = 'external_wallet' and owner = 'test-game/p-1'";
    let reserve = "select balance_micros from ledger_accounts where kind = 'jackpot_reserve' and owner = 'provider-pot'";
    assert_eq!(scalar(&pool, wallet).await, 50_800_000);
    let reserve_before = scalar(&pool, reserve).await;

    let (status, rolled) =
        roll_back(&app, &award_id, json!({ "reason": "the provider voided the round" })).await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(
        (rolled["status"].as_str(), rolled["amount"].as_str(), rolled["rolledBackBy"].as_str()),
        (Some("rolled_back"), Some("50.80"), Some("test-admin"))
    );
    assert_eq!(scalar(&pool, wallet).await, 0);
    assert_eq!(scalar(&pool, reserve).await, reserve_before + 50_800_000);
    let (status, kind): (String, String) = sqlx::query_as(
        "select a.status, t.kind from jackpot_awards a join ledger_transfers t on t.reference = 'rollback:' || a.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), kind.as_str()), ("rolled_back", "award_rollback"));
    // The award row is kept, not deleted; its amount is unchanged.
    assert_eq!(scalar(&pool, "select awarded_amount_micros from jackpot_awards").await, 50_800_000);

    let (status, again) = roll_back(&app, &award_id, json!({ "reason": "twice" })).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("award_already_rolled_back")));
    assert_eq!(scalar(&pool, "select count(*) from jackpot_award_rollbacks").await, 1);
    let report = crate::helpers::reconcile(&pool).await;
    assert_eq!(report.mismatches, vec![], "the books still reconcile");
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rollback_is_refused_when_it_cannot_be_made(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let award = awarded_provider_pot(&app, &pool).await;
    let award_id = award["awardId"].to_string();
    let cases = [
        ("999999", json!({ "reason": "r" }), 404, "award_not_found"),
        ("not-a-number", json!({ "reason": "r" }), 404, "award_not_found"),
        (award_id.as_str(), json!({ "reason": " " }), 422, "invalid_body"),
        (award_id.as_str(), json!({}), 422, "invalid_body"),
    ];
    for (id, body, status, code) in cases {
        let (got, answer) = roll_back(&app, id, body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{id} {body}");
    }
    // The winner has spent part of the award (a transfer out of the wallet).
    sqlx::query(
        "with w as (select id from ledger_accounts where kind = 'external_wallet' and owner = 'test-game/p-1'),
              h as (select id from ledger_accounts where kind = 'house'),
              moved as (update ledger_accounts set balance_micros = balance_micros - 1000000
                         where id = (select id from w) returning id),
              paid as (update ledger_accounts set balance_micros = balance_micros + 1000000
                        where id = (select id from h) returning id)
         insert into ledger_transfers (debit_account_id, credit_account_id, amount_micros, kind, reference)
         select (select id from w), (select id from h), 1000000, 'bet', 'test:spent'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, answer) = roll_back(&app, &award_id, json!({ "reason": "voided" })).await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("insufficient_funds")), "{answer}");
    assert_eq!(scalar(&pool, "select count(*) from jackpot_award_rollbacks").await, 0);
    assert_eq!(scalar(&pool, "select count(*) from jackpot_awards where status = 'paid'").await, 1);
}
