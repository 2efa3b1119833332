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

#[sqlx::test(migrations = "../migrations")]
async fn a_pause_committed_while_a_batch_waits_for_the_pool_is_honoured(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;
    let (status, _) = contribute(&app, "provider-pot", "k-1", bet("any-game", "10")).await;
    assert_eq!(status, 200, "the app now knows the pool and writes its next batch unlocked");

    // A pause as PATCH /admin/jackpots makes it, held open: the jackpot and its
    // open cycle locked, the status changed, the cycle's config_version bumped.
    let mut change = pool.begin().await.unwrap();
    sqlx::query(
        "select 1 from jackpots j join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
                  where j.id = 'provider-pot' for update of j, c",
    )
    .execute(&mut *change)
    .await
    .unwrap();
    sqlx::query("update jackpots set status = 'paused' where id = 'provider-pot'")
        .execute(&mut *change)
        .await
        .unwrap();
    sqlx::query("update jackpot_cycles set config_version = config_version + 1 where jackpot_id = 'provider-pot' and closed_at is null")
        .execute(&mut *change)
        .await
        .unwrap();

    // The contribution's statement starts now, sees the jackpot active, and
    // waits for the cycle row; the pause commits while it waits.
    let contribution = {
        let client = app.service("test-game");
        tokio::spawn(async move {
            let response =
                client.post("/jackpot/provider-pot/contribute", &bet("any-game", "10"), "k-2").await.unwrap();
            (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    change.commit().await.unwrap();
    let (status, body) = contribution.await.unwrap();
    assert_eq!((status, body["code"].as_str()), (409, Some("jackpot_paused")), "{body}");
    let count: i64 =
        sqlx::query_scalar("select count(*) from jackpot_contributions").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 1, "nothing was written after the pause");
}
