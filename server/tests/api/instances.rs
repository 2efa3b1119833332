//! Two server instances on one database. Each computes its next batch from the
//! pools as its own last batch left them; these tests change a pool through
//! the other instance in between and check nothing stale is ever written.

use domain::money::Amount;
use serde_json::json;
use sqlx::PgPool;

use crate::admin::configure;
use crate::helpers::spawn_app;
use crate::service::{assert_books_balance, bet, claim, contribute, provider_jackpot};

fn amount(value: &serde_json::Value) -> Amount {
    value.as_str().unwrap().parse().unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn alternating_instances_each_see_the_others_contributions(pool: PgPool) {
    let (a, b) = (spawn_app(pool.clone()).await, spawn_app(pool.clone()).await);
    // seed 50.00; 1 % of each bet, of which 80 % to the pool.
    provider_jackpot(&pool).await;
    let mut expected = Amount::from_micros(50_000_000);
    for n in 0..20 {
        let app = if n % 2 == 0 { &a } else { &b };
        let (status, receipt) =
            contribute(app, "provider-pot", &format!("k-{n}"), bet("any-game", "10")).await;
        assert_eq!(status, 200, "{receipt}");
        expected = Amount::from_micros(expected.micros() + 80_000);
        assert_eq!(amount(&receipt["value"]), expected, "contribution {n}: {receipt}");
    }
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_pause_or_an_award_on_one_instance_holds_on_the_other(pool: PgPool) {
    let (a, b) = (spawn_app(pool.clone()).await, spawn_app(pool.clone()).await);
    provider_jackpot(&pool).await;
    let (status, _) = contribute(&a, "provider-pot", "k-1", bet("any-game", "10")).await;
    assert_eq!(status, 200);

    // Paused through b: a refuses at once, though its last batch saw it active.
    let pause = json!({ "status": "paused", "reason": "checking a complaint" });
    let (status, _) = configure(&b, "provider-pot", pause).await;
    assert_eq!(status, 200);
    let (status, body) = contribute(&a, "provider-pot", "k-2", bet("any-game", "10")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("jackpot_paused")));
    let resume = json!({ "status": "active", "reason": "complaint closed" });
    let (status, _) = configure(&b, "provider-pot", resume).await;
    assert_eq!(status, 200);

    // Awarded through b: a's next contribution goes to cycle 2, from its seed.
    let (status, award) =
        claim(&b, "provider-pot", "a-1", json!({ "playerId": "p-1", "sessionId": "s-1", "cycle": 1 })).await;
    assert_eq!(status, 200, "{award}");
    assert_eq!(award["awardedAmount"], "50.08");
    let (status, receipt) = contribute(&a, "provider-pot", "k-3", bet("any-game", "10")).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!((receipt["cycle"].as_i64(), receipt["value"].as_str()), (Some(2), Some("50.08")));
    assert_books_balance(&pool).await;
}
