//! Demo data for a fresh installation: three jackpots, one per tier, so the
//! lobby has something to show. Runs only on an empty `jackpots` table.

use domain::jackpot::{Rules, Tier, TriggerMode};
use domain::money::{Amount, Currency, Rate, MICROS_PER_UNIT};
use sqlx::PgPool;

use crate::audit::{self, Actor};
use crate::db::jackpots::{self, Jackpot, NewJackpot};
use crate::db::ledger::Accounts;
use crate::engine;

/// Serialises seeding between instances that start at the same moment.
const SEED_LOCK_KEY: i64 = 0x0063_656b_706f_7401; // "cekpot" + 1

/// The games of the demo: the Mini App's own slot and one outside provider's.
pub const DEMO_GAMES: [&str; 2] = ["cekpot-slot", "caspian-reels"];

struct Demo {
    id: &'static str,
    name: &'static str,
    tier: Tier,
    rate_ppm: u32,
    seed_units: i64,
    max_units: i64,
    min_bet_micros: i64,
    games: &'static [&'static str],
}

/// 0.5 % of every eligible bet in all: 0.2 % to the local pool, 0.15 % each to
/// the shared and mega pools; a tenth of each contribution funds the next seed.
const DEMO_JACKPOTS: [Demo; 3] = [
    Demo {
        id: "lucky-sevens",
        name: "Lucky Sevens",
        tier: Tier::Local,
        rate_ppm: 2_000,
        seed_units: 100,
        max_units: 1_000,
        min_bet_micros: 100_000,
        games: &["cekpot-slot"],
    },
    Demo {
        id: "caspian-shared",
        name: "Caspian Treasure",
        tier: Tier::Shared,
        rate_ppm: 1_500,
        seed_units: 1_000,
        max_units: 10_000,
        min_bet_micros: 100_000,
        games: &DEMO_GAMES,
    },
    Demo {
        id: "cekpot-mega",
        name: "Cekpot Mega",
        tier: Tier::Mega,
        rate_ppm: 1_500,
        seed_units: 10_000,
        max_units: 100_000,
        min_bet_micros: 500_000,
        games: &[],
    },
];

/// Creates them in `currency`, the Mini App's (`money.currency`), so that the
/// slot feeds them; returns whether it created them.
pub async fn seed_jackpots(pool: &PgPool, currency: Currency) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)").bind(SEED_LOCK_KEY).execute(&mut *tx).await?;
    if jackpots::count(&mut tx).await? > 0 {
        return Ok(false);
    }
    let accounts = Accounts::new(pool.clone());
    let actor = Actor::system("demo");
    let mut created = Vec::new();
    for demo in &DEMO_JACKPOTS {
        let rules = Rules::new(
            Rate::from_ppm(demo.rate_ppm).expect("a valid rate"),
            Rate::from_ppm(100_000).expect("a valid rate"),
            Amount::from_micros(demo.seed_units * MICROS_PER_UNIT),
            Amount::from_micros(demo.max_units * MICROS_PER_UNIT),
            Amount::from_micros(demo.min_bet_micros),
            TriggerMode::MustDrop,
        )
        .expect("valid demo rules");
        let new = NewJackpot { id: demo.id, name: demo.name, tier: demo.tier, currency, rules };
        jackpots::insert(&mut tx, &new).await?;
        if !demo.games.is_empty() {
            jackpots::add_games(&mut tx, demo.id, demo.games).await?;
        }
        let jackpot = Jackpot {
            id: demo.id.to_owned(),
            name: demo.name.to_owned(),
            tier: demo.tier,
            currency,
            rules,
            status: domain::jackpot::Status::Active,
        };
        let (_, entry) = engine::open_first_cycle(&mut tx, &accounts, &jackpot, &actor).await?;
        created.push(entry);
    }
    audit::append(&mut tx, &created).await?;
    tx.commit().await?;
    Ok(true)
}

/// The contribution rate, in ppm, that a bet of `game_id` pays into the demo
/// jackpots in all (when it is at least every jackpot's minimum bet).
pub fn contribution_ppm_of(game_id: &str) -> u64 {
    DEMO_JACKPOTS
        .iter()
        .filter(|demo| demo.tier == Tier::Mega || demo.games.contains(&game_id))
        .map(|demo| u64::from(demo.rate_ppm))
        .sum()
}
