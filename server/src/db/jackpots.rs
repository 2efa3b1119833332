//! Jackpot configuration, running cycles and the games that feed them.

use domain::jackpot::{Rules, Status, Tier, TriggerMode};
use domain::money::{Amount, Currency, Rate};
use sqlx::{PgConnection, PgPool};

use super::params::Params;
use super::Meter;

/// A jackpot's configuration, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jackpot {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub currency: Currency,
    pub rules: Rules,
    pub status: Status,
}

/// The six rule columns, as the jackpot (its configuration) and each cycle
/// (the rules it runs under) store them.
#[derive(sqlx::FromRow)]
struct RulesRow {
    contribution_rate_ppm: i32,
    reserve_share_ppm: i32,
    seed_micros: i64,
    max_value_micros: i64,
    min_bet_micros: i64,
    trigger_mode: String,
}

impl RulesRow {
    // The tables' check constraints make these parses infallible; a failure
    // means the schema and the code disagree.
    fn parse(self, id: &str) -> Result<Rules, sqlx::Error> {
        let rate = |ppm: i32, what| {
            u32::try_from(ppm)
                .ok()
                .and_then(|ppm| Rate::from_ppm(ppm).ok())
                .ok_or_else(|| decode_error(id, what, ppm))
        };
        Rules::new(
            rate(self.contribution_rate_ppm, "contribution rate")?,
            rate(self.reserve_share_ppm, "reserve share")?,
            Amount::from_micros(self.seed_micros),
            Amount::from_micros(self.max_value_micros),
            Amount::from_micros(self.min_bet_micros),
            self.trigger_mode.parse::<TriggerMode>().map_err(|e| decode_error(id, "trigger mode", e))?,
        )
        .map_err(|e| decode_error(id, "rules", e))
    }
}

#[derive(sqlx::FromRow)]
struct JackpotRow {
    id: String,
    name: String,
    tier: String,
    currency: String,
    status: String,
    #[sqlx(flatten)]
    rules: RulesRow,
}

fn decode_error(id: &str, what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("jackpot {id}: {what}: {error}").into())
}

impl TryFrom<JackpotRow> for Jackpot {
    type Error = sqlx::Error;

    fn try_from(row: JackpotRow) -> Result<Jackpot, sqlx::Error> {
        let id = row.id;
        Ok(Jackpot {
            name: row.name,
            tier: row.tier.parse().map_err(|e| decode_error(&id, "tier", e))?,
            currency: row.currency.parse().map_err(|e| decode_error(&id, "currency", e))?,
            status: row.status.parse().map_err(|e| decode_error(&id, "status", e))?,
            rules: row.rules.parse(&id)?,
            id,
        })
    }
}

/// A locked jackpot with its running cycle and the games it accepts.
#[derive(Debug, Clone)]
pub struct LockedJackpot {
    /// The configuration: the next cycle's rules.
    pub jackpot: Jackpot,
    /// The running cycle, with the rules it opened under.
    pub cycle: OpenCycle,
    /// Empty for jackpots that list no games (a mega jackpot takes them all).
    pub games: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct LockedRow {
    #[sqlx(flatten)]
    jackpot: JackpotRow,
    cycle_number: i64,
    cycle_contribution_rate_ppm: i32,
    cycle_reserve_share_ppm: i32,
    cycle_seed_micros: i64,
    cycle_max_value_micros: i64,
    cycle_min_bet_micros: i64,
    cycle_trigger_mode: String,
    config_version: i64,
    value_micros: i64,
    drop_point_micros: Option<i64>,
    games: Vec<String>,
}

/// Locks the jackpots and their open cycles (in jackpot id order, so
/// concurrent lockers never deadlock) for the rest of the transaction — every
/// change to a jackpot's pool happens under this lock — and reads them with the
/// games they accept. Unknown ids are simply absent from the answer.
///
/// One statement in the usual case. A locking read that waited re-reads the
/// rows it locked (the jackpot and its cycle) but not the cycle an award
/// opened meanwhile: such a jackpot drops out of the answer, and is read
/// again by a statement that starts after the award, under the lock.
pub async fn lock_with_cycles(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<Vec<LockedJackpot>, sqlx::Error> {
    let mut rows: Vec<LockedRow> = sqlx::query_as(LOCK_WITH_CYCLES).bind(ids).fetch_all(&mut *conn).await?;
    if rows.len() < ids.len() {
        let missing: Vec<&str> =
            ids.iter().copied().filter(|id| !rows.iter().any(|row| row.jackpot.id == *id)).collect();
        // Lock the jackpot rows themselves first: a cycle opened after this
        // statement's start is then visible to the next one.
        sqlx::query("select id from jackpots where id = any($1) order by id for update")
            .bind(&missing)
            .execute(&mut *conn)
            .await?;
        rows.extend(
            sqlx::query_as::<_, LockedRow>(LOCK_WITH_CYCLES).bind(&missing).fetch_all(&mut *conn).await?,
        );
        rows.sort_by(|a, b| a.jackpot.id.cmp(&b.jackpot.id));
    }
    rows.into_iter()
        .map(|row| {
            let jackpot = Jackpot::try_from(row.jackpot)?;
            let rules = RulesRow {
                contribution_rate_ppm: row.cycle_contribution_rate_ppm,
                reserve_share_ppm: row.cycle_reserve_share_ppm,
                seed_micros: row.cycle_seed_micros,
                max_value_micros: row.cycle_max_value_micros,
                min_bet_micros: row.cycle_min_bet_micros,
                trigger_mode: row.cycle_trigger_mode,
            }
            .parse(&jackpot.id)?;
            let cycle = OpenCycle {
                jackpot_id: jackpot.id.clone(),
                cycle_number: row.cycle_number,
                value_micros: row.value_micros,
                drop_point_micros: row.drop_point_micros,
                config_version: row.config_version,
                rules,
            };
            Ok(LockedJackpot { jackpot, cycle, games: row.games })
        })
        .collect()
}

const LOCK_WITH_CYCLES: &str =
    "select j.id, j.name, j.tier, j.currency, j.contribution_rate_ppm, j.reserve_share_ppm,
        j.seed_micros, j.max_value_micros, j.min_bet_micros, j.trigger_mode, j.status,
        c.cycle_number, c.contribution_rate_ppm as cycle_contribution_rate_ppm,
        c.reserve_share_ppm as cycle_reserve_share_ppm, c.seed_micros as cycle_seed_micros,
        c.max_value_micros as cycle_max_value_micros, c.min_bet_micros as cycle_min_bet_micros,
        c.trigger_mode as cycle_trigger_mode, c.config_version, c.value_micros, c.drop_point_micros,
        array(select g.game_id from jackpot_games g where g.jackpot_id = j.id) as games
   from jackpots j
   join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
  where j.id = any($1)
  order by j.id
    for update of j, c";

/// Cycle updates as statement parameters.
pub struct CycleColumns<'a> {
    ids: Vec<&'a str>,
    numbers: [Vec<i64>; 7],
    expected: [Vec<Option<i64>>; 2],
}

impl<'a> CycleColumns<'a> {
    pub fn of(updates: &'a [CycleUpdate]) -> CycleColumns<'a> {
        let column = |f: fn(&CycleUpdate) -> i64| updates.iter().map(f).collect::<Vec<i64>>();
        CycleColumns {
            ids: updates.iter().map(|u| u.jackpot_id.as_str()).collect(),
            numbers: [
                column(|u| u.cycle_number),
                column(|u| u.value.micros()),
                column(|u| u.meters.bets_count),
                column(|u| u.meters.bets_micros),
                column(|u| u.meters.contributions_micros),
                column(|u| u.meters.pool_shares_micros),
                column(|u| u.meters.reserve_shares_micros),
            ],
            expected: [
                updates.iter().map(|u| u.expected_value.map(Amount::micros)).collect(),
                updates.iter().map(|u| u.expected_config_version).collect(),
            ],
        }
    }

    /// The common table expression `cycles`, its values bound to `params`:
    /// each cycle's value is set and its meters added to, provided it is
    /// open, its jackpot active and its value the expected one. A caller
    /// compares the number of rows in `cycles` with the number of updates.
    /// A configuration change bumps the open cycle's `config_version`: a
    /// statement that waited for the change re-checks the cycle row it
    /// updates (the jackpot row's status it read is from before), so a pause
    /// never slips inside a batch.
    pub fn cte(&self, params: &mut Params) -> String {
        let ids = params.bind(&self.ids);
        let [cycles, values, bets_count, bets, contributions, pool_shares, reserve_shares] =
            self.numbers.each_ref().map(|c| params.bind(c));
        let [expected_value, expected_version] = self.expected.each_ref().map(|c| params.bind(c));
        format!(
            "cycles as (
                 update jackpot_cycles c
                    set value_micros = u.value_micros,
                        bets_count = c.bets_count + u.bets_count,
                        bets_micros = c.bets_micros + u.bets_micros,
                        contributions_micros = c.contributions_micros + u.contributions_micros,
                        pool_shares_micros = c.pool_shares_micros + u.pool_shares_micros,
                        reserve_shares_micros = c.reserve_shares_micros + u.reserve_shares_micros
                   from unnest({ids}::text[], {cycles}::bigint[], {values}::bigint[], {bets_count}::bigint[],
                               {bets}::bigint[], {contributions}::bigint[], {pool_shares}::bigint[],
                               {reserve_shares}::bigint[], {expected_value}::bigint[], {expected_version}::bigint[])
                        as u(jackpot_id, cycle_number, value_micros, bets_count, bets_micros, contributions_micros,
                             pool_shares_micros, reserve_shares_micros, expected_value_micros, expected_config_version)
                  where c.jackpot_id = u.jackpot_id and c.cycle_number = u.cycle_number
                    and c.closed_at is null
                    and (u.expected_value_micros is null or c.value_micros = u.expected_value_micros)
                    and (u.expected_config_version is null or c.config_version = u.expected_config_version)
                    and exists (select 1 from jackpots j where j.id = c.jackpot_id and j.status = 'active')
                 returning c.jackpot_id)"
        )
    }
}

/// A cycle's new value and what a run of contributions added to its meters.
#[derive(Debug, Clone)]
pub struct CycleUpdate {
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub value: Amount,
    pub meters: CycleMeters,
    /// The value the update was computed from: when set, the cycle is updated
    /// only if it still holds exactly that value (and is open, and its jackpot
    /// active). A write computed without the jackpot's lock says so here.
    pub expected_value: Option<Amount>,
    /// Likewise the cycle's `config_version` (see [`bump_config_version`]).
    pub expected_config_version: Option<i64>,
}

/// Marks the open cycle as changed by a configuration change (the caller holds
/// the jackpot's lock): a batch computed before it will not be written.
pub async fn bump_config_version(conn: &mut PgConnection, jackpot_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update jackpot_cycles set config_version = config_version + 1 where jackpot_id = $1 and closed_at is null",
    )
    .bind(jackpot_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Sets each cycle's value and adds to its meters, all in one statement.
pub async fn update_cycles(conn: &mut PgConnection, updates: &[CycleUpdate]) -> Result<(), sqlx::Error> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut params = Params::new();
    let sql = format!("with {} select count(*) from cycles", CycleColumns::of(updates).cte(&mut params));
    let (updated,): (i64,) = sqlx::query_as_with(&sql, params.finish()?).fetch_one(conn).await?;
    if updated != updates.len() as i64 {
        // Callers hold the jackpots' locks: a cycle that did not update means
        // the code and the database disagree.
        return Err(sqlx::Error::Protocol(format!("{updated} of {} cycles updated", updates.len())));
    }
    Ok(())
}

/// Stores a jackpot's new name, status and rules (the caller holds its lock).
pub async fn update_config(conn: &mut PgConnection, jackpot: &Jackpot) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "update jackpots
            set name = $2, status = $3, contribution_rate_ppm = $4, reserve_share_ppm = $5, seed_micros = $6,
                max_value_micros = $7, min_bet_micros = $8, trigger_mode = $9, updated_at = now()
          where id = $1",
    )
    .bind(&jackpot.id)
    .bind(&jackpot.name)
    .bind(jackpot.status.as_str());
    bind_rules(query, &jackpot.rules).execute(conn).await.map(drop)
}

/// A recorded configuration change.
pub struct NewChange<'a> {
    pub jackpot_id: &'a str,
    pub changed_by: &'a str,
    pub reason: &'a str,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub applies_from_cycle: Option<i64>,
}

pub async fn insert_change(conn: &mut PgConnection, change: &NewChange<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into jackpot_changes (jackpot_id, changed_by, reason, before, after, applies_from_cycle)
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(change.jackpot_id)
    .bind(change.changed_by)
    .bind(change.reason)
    .bind(&change.before)
    .bind(&change.after)
    .bind(change.applies_from_cycle)
    .fetch_one(conn)
    .await
}

pub async fn add_games(conn: &mut PgConnection, jackpot_id: &str, games: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query("insert into jackpot_games (jackpot_id, game_id) select $1, unnest($2::text[])")
        .bind(jackpot_id)
        .bind(games)
        .execute(conn)
        .await
        .map(drop)
}

/// The running cycle of a jackpot.
#[derive(Debug, Clone)]
pub struct OpenCycle {
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub value_micros: i64,
    pub drop_point_micros: Option<i64>,
    /// The rules the cycle opened under: edits to the jackpot wait for the next.
    pub rules: Rules,
    /// Configuration changes made while it is open.
    pub config_version: i64,
}

/// A cycle to open, with its fairness data when it is must-drop.
pub struct NewCycle<'a> {
    pub jackpot_id: &'a str,
    pub cycle_number: i64,
    /// The rules it runs under (its seed among them), fixed for its life.
    pub rules: &'a Rules,
    pub seed_from_reserve: Amount,
    pub seed_from_house: Amount,
    /// (drop point, salt hex, commitment hex)
    pub fairness: Option<(Amount, String, String)>,
}

pub async fn insert_cycle(conn: &mut PgConnection, cycle: &NewCycle<'_>) -> Result<(), sqlx::Error> {
    let (drop_point, salt, commitment) = match &cycle.fairness {
        Some((point, salt, commitment)) => {
            (Some(point.micros()), Some(salt.as_str()), Some(commitment.as_str()))
        }
        None => (None, None, None),
    };
    let query = sqlx::query(
        "insert into jackpot_cycles (jackpot_id, cycle_number, contribution_rate_ppm, reserve_share_ppm, seed_micros,
                                     max_value_micros, min_bet_micros, trigger_mode, value_micros,
                                     seed_from_reserve_micros, seed_from_house_micros, drop_point_micros, salt,
                                     commitment)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $5, $9, $10, $11, $12, $13)",
    )
    .bind(cycle.jackpot_id)
    .bind(cycle.cycle_number);
    bind_rules(query, cycle.rules)
        .bind(cycle.seed_from_reserve.micros())
        .bind(cycle.seed_from_house.micros())
        .bind(drop_point)
        .bind(salt)
        .bind(commitment)
        .execute(conn)
        .await
        .map(drop)
}

/// What a run of contributions added to a cycle.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleMeters {
    pub bets_count: i64,
    pub bets_micros: i64,
    pub contributions_micros: i64,
    pub pool_shares_micros: i64,
    pub reserve_shares_micros: i64,
}

/// Ends a cycle (its value and meters are already up to date).
pub async fn close_cycle(
    conn: &mut PgConnection,
    jackpot_id: &str,
    cycle_number: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update jackpot_cycles set closed_at = now() where jackpot_id = $1 and cycle_number = $2")
        .bind(jackpot_id)
        .bind(cycle_number)
        .execute(conn)
        .await
        .map(drop)
}

/// A jackpot's currency, read without a lock (it never changes).
pub async fn currency_of<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: &str,
) -> Result<Option<Currency>, sqlx::Error> {
    let currency: Option<String> = sqlx::query_scalar("select currency from jackpots where id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    currency.map(|c| c.parse().map_err(|e| decode_error(id, "currency", e))).transpose()
}

/// The contribution rate (ppm) and minimum bet of each active jackpot a
/// game's bets feed, as its running cycle has them.
pub async fn contribution_rates<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    game_id: &str,
    currency: &str,
) -> Result<Vec<(String, u64, Amount)>, sqlx::Error> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "select j.id, c.contribution_rate_ppm, c.min_bet_micros
           from jackpots j join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
          where j.status = 'active' and j.currency = $2
            and (j.tier = 'mega' or exists (select 1 from jackpot_games g where g.jackpot_id = j.id and g.game_id = $1))
          order by j.id",
    )
    .bind(game_id)
    .bind(currency)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(id, ppm, min)| (id, ppm as u64, Amount::from_micros(min))).collect())
}

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

/// An active jackpot and its running cycle, as the lobby lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub currency: Currency,
    pub seed: Amount,
    pub max_value: Amount,
    pub value: Amount,
    pub cycle: i64,
}

/// Active jackpots with their running cycle, biggest tier first.
pub async fn list_summaries(
    pool: &PgPool,
    tier: Option<Tier>,
    limit: i64,
) -> Result<Vec<Summary>, sqlx::Error> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "select j.id, j.name, j.tier, j.currency, c.seed_micros, c.max_value_micros,
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
    fn into_summary(self) -> Result<Summary, sqlx::Error> {
        Ok(Summary {
            tier: self.tier.parse().map_err(|e| decode_error(&self.id, "tier", e))?,
            currency: self.currency.parse().map_err(|e| decode_error(&self.id, "currency", e))?,
            id: self.id,
            name: self.name,
            seed: Amount::from_micros(self.seed_micros),
            max_value: Amount::from_micros(self.max_value_micros),
            value: Amount::from_micros(self.value_micros),
            cycle: self.cycle_number,
        })
    }
}

/// A rate as the `integer` column stores it (a rate is at most 1,000,000 ppm).
fn ppm(rate: Rate) -> i32 {
    i32::try_from(rate.ppm()).expect("a rate is at most 1,000,000 ppm")
}

/// Binds the six rule columns, in the order the tables declare them:
/// contribution rate, reserve share, seed, maximum, minimum bet, trigger mode.
fn bind_rules<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    rules: &Rules,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(ppm(rules.contribution_rate()))
        .bind(ppm(rules.reserve_share()))
        .bind(rules.seed().micros())
        .bind(rules.max_value().micros())
        .bind(rules.min_bet().micros())
        .bind(rules.trigger_mode().as_str())
}

/// A jackpot to create. Its first cycle is opened by the engine.
pub struct NewJackpot<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tier: Tier,
    pub currency: Currency,
    pub rules: Rules,
}

pub async fn insert(conn: &mut PgConnection, jackpot: &NewJackpot<'_>) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "insert into jackpots (id, name, tier, currency, contribution_rate_ppm, reserve_share_ppm,
                               seed_micros, max_value_micros, min_bet_micros, trigger_mode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(jackpot.id)
    .bind(jackpot.name)
    .bind(jackpot.tier.as_str())
    .bind(jackpot.currency.as_str());
    bind_rules(query, &jackpot.rules).execute(conn).await.map(drop)
}

pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from jackpots").fetch_one(conn).await
}

/// A jackpot with its open cycle and lifetime meters, for the service API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DetailRow {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub currency: String,
    pub status: String,
    pub trigger_mode: String,
    pub contribution_rate_ppm: i32,
    pub reserve_share_ppm: i32,
    pub seed_micros: i64,
    pub max_value_micros: i64,
    pub min_bet_micros: i64,
    pub cycle_number: i64,
    pub value_micros: i64,
    pub commitment: Option<String>,
    pub bets_count: i64,
    pub bets_micros: Meter,
    pub contributions_micros: Meter,
    pub hits: i64,
    pub won_micros: Meter,
}

/// All jackpots (`id` = None) or one, with meters summed over every cycle. The
/// rules are the running cycle's (configuration edits wait for the next cycle).
pub async fn details(
    conn: &mut PgConnection,
    id: Option<&str>,
    limit: i64,
) -> Result<Vec<DetailRow>, sqlx::Error> {
    sqlx::query_as(
        "select j.id, j.name, j.tier, j.currency, j.status, c.trigger_mode, c.contribution_rate_ppm,
                c.reserve_share_ppm, c.seed_micros, c.max_value_micros, c.min_bet_micros,
                c.cycle_number, c.value_micros, c.commitment,
                m.bets_count, m.bets_micros, m.contributions_micros, a.hits, a.won_micros
           from jackpots j
           join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
          cross join lateral (
                select coalesce(sum(bets_count), 0)::bigint as bets_count,
                       coalesce(sum(bets_micros), 0)::text as bets_micros,
                       coalesce(sum(contributions_micros), 0)::text as contributions_micros
                  from jackpot_cycles where jackpot_id = j.id) m
          cross join lateral (
                select count(*)::bigint as hits, coalesce(sum(awarded_amount_micros), 0)::text as won_micros
                  from jackpot_awards where jackpot_id = j.id and status = 'paid') a
          where ($1::text is null or j.id = $1)
          order by case j.tier when 'mega' then 0 when 'shared' then 1 else 2 end, j.name, j.id
          limit $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
