//! Jackpot configuration and running cycles.

use app::api::JackpotSummary;
use domain::jackpot::{Progress, Tier};
use domain::money::Amount;
use sqlx::{PgConnection, PgPool};

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: String,
    name: String,
    tier: String,
    currency: String,
    seed_micros: i64,
    max_value_micros: i64,
    value_micros: i64,
    cycle_number: i64,
}

/// Active jackpots with their running cycle, biggest tier first.
pub async fn list_summaries(
    pool: &PgPool,
    tier: Option<Tier>,
    limit: i64,
) -> Result<Vec<JackpotSummary>, sqlx::Error> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "select j.id, j.name, j.tier, j.currency, c.seed_micros, j.max_value_micros,
                c.value_micros, c.cycle_number
           from jackpots j
           join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
          where j.status = 'active' and ($1::text is null or j.tier = $1)
          order by case j.tier when 'mega' then 0 when 'shared' then 1 else 2 end, j.name, j.id
          limit $2",
    )
    .bind(tier.map(Tier::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(SummaryRow::into_summary).collect()
}

impl SummaryRow {
    fn into_summary(self) -> Result<JackpotSummary, sqlx::Error> {
        // The table's check constraints make these parses infallible; a failure
        // means the schema and the code disagree.
        let decode = |what: &str, error: String| {
            sqlx::Error::Decode(format!("jackpot {}: {what}: {error}", self.id).into())
        };
        let tier = self.tier.parse::<Tier>().map_err(|e| decode("tier", e.to_string()))?;
        let currency = self
            .currency
            .parse()
            .map_err(|e: domain::money::CurrencyError| decode("currency", e.to_string()))?;
        let value = Amount::from_micros(self.value_micros);
        let max_value = Amount::from_micros(self.max_value_micros);
        Ok(JackpotSummary {
            progress_bp: Progress::of(value, max_value),
            id: self.id,
            name: self.name,
            tier,
            currency,
            value,
            seed: Amount::from_micros(self.seed_micros),
            max_value,
            cycle: self.cycle_number,
        })
    }
}

/// A jackpot to create, with its first cycle opened at the seed.
pub struct NewJackpot<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tier: Tier,
    pub currency: &'a str,
    pub contribution_rate_ppm: i32,
    pub reserve_share_ppm: i32,
    pub seed: Amount,
    pub max_value: Amount,
    pub min_bet: Amount,
    pub trigger_mode: &'a str,
}

pub async fn insert(conn: &mut PgConnection, jackpot: &NewJackpot<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into jackpots (id, name, tier, currency, contribution_rate_ppm, reserve_share_ppm,
                               seed_micros, max_value_micros, min_bet_micros, trigger_mode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(jackpot.id)
    .bind(jackpot.name)
    .bind(jackpot.tier.as_str())
    .bind(jackpot.currency)
    .bind(jackpot.contribution_rate_ppm)
    .bind(jackpot.reserve_share_ppm)
    .bind(jackpot.seed.micros())
    .bind(jackpot.max_value.micros())
    .bind(jackpot.min_bet.micros())
    .bind(jackpot.trigger_mode)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into jackpot_cycles (jackpot_id, cycle_number, seed_micros, value_micros)
         values ($1, 1, $2, $2)",
    )
    .bind(jackpot.id)
    .bind(jackpot.seed.micros())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from jackpots").fetch_one(conn).await
}
