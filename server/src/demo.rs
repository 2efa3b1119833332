//! Demo data for a fresh installation: three jackpots, one per tier, so the
//! lobby has something to show. Runs only on an empty `jackpots` table.

use domain::jackpot::Tier;
use domain::money::Amount;
use sqlx::PgPool;

use crate::db::jackpots::{self, NewJackpot};

/// Serialises seeding between instances that start at the same moment.
const SEED_LOCK_KEY: i64 = 0x0063_656b_706f_7401; // "cekpot" + 1

/// 0.5 % of every eligible bet in all: 0.2 % to the local pool, 0.15 % each to
/// the shared and mega pools; a tenth of each contribution funds the next seed.
fn demo_jackpots() -> [NewJackpot<'static>; 3] {
    let units = |n: i64| Amount::from_micros(n * domain::money::MICROS_PER_UNIT);
    [
        NewJackpot {
            id: "lucky-sevens",
            name: "Lucky Sevens",
            tier: Tier::Local,
            currency: "EUR",
            contribution_rate_ppm: 2_000,
            reserve_share_ppm: 100_000,
            seed: units(100),
            max_value: units(1_000),
            min_bet: Amount::from_micros(100_000),
            trigger_mode: "must_drop",
        },
        NewJackpot {
            id: "caspian-shared",
            name: "Caspian Treasure",
            tier: Tier::Shared,
            currency: "EUR",
            contribution_rate_ppm: 1_500,
            reserve_share_ppm: 100_000,
            seed: units(1_000),
            max_value: units(10_000),
            min_bet: Amount::from_micros(100_000),
            trigger_mode: "must_drop",
        },
        NewJackpot {
            id: "cekpot-mega",
            name: "Cekpot Mega",
            tier: Tier::Mega,
            currency: "EUR",
            contribution_rate_ppm: 1_500,
            reserve_share_ppm: 100_000,
            seed: units(10_000),
            max_value: units(100_000),
            min_bet: Amount::from_micros(500_000),
            trigger_mode: "must_drop",
        },
    ]
}

/// Returns whether it created the jackpots.
pub async fn seed_jackpots(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)").bind(SEED_LOCK_KEY).execute(&mut *tx).await?;
    if jackpots::count(&mut tx).await? > 0 {
        return Ok(false);
    }
    for jackpot in demo_jackpots() {
        jackpots::insert(&mut tx, &jackpot).await?;
    }
    tx.commit().await?;
    Ok(true)
}
