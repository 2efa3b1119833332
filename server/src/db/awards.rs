//! Awards, and the claims that asked for them.

use chrono::{DateTime, Utc};
use domain::money::Amount;
use sqlx::PgConnection;

/// An award with its cycle's revealed fairness data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AwardRecord {
    pub id: i64,
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub origin: String,
    pub player_id: String,
    /// The account the award paid (and a rollback takes back from).
    pub winner_account_id: i64,
    pub session_id: Option<String>,
    pub awarded_amount_micros: i64,
    pub trigger_mode: String,
    pub contribution_id: Option<i64>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub drop_point_micros: Option<i64>,
    pub salt: Option<String>,
    pub commitment: Option<String>,
}

const AWARD_SELECT: &str = "select a.id, a.jackpot_id, a.cycle_number, a.origin, a.player_id,
            a.winner_account_id, a.session_id,
            a.awarded_amount_micros, a.trigger_mode, a.contribution_id, a.status, a.created_at,
            c.drop_point_micros, c.salt, c.commitment
       from jackpot_awards a
       join jackpot_cycles c on c.jackpot_id = a.jackpot_id and c.cycle_number = a.cycle_number";

pub struct NewAward<'a> {
    pub jackpot_id: &'a str,
    pub cycle_number: i64,
    pub origin: &'a str,
    pub player_id: &'a str,
    pub winner_account_id: i64,
    pub session_id: Option<&'a str>,
    pub awarded_amount: Amount,
    pub trigger_mode: &'a str,
    pub contribution_id: Option<i64>,
}

pub async fn insert(conn: &mut PgConnection, award: &NewAward<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into jackpot_awards (jackpot_id, cycle_number, player_id, session_id, awarded_amount_micros,
                                     trigger_mode, contribution_id, origin, winner_account_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(award.jackpot_id)
    .bind(award.cycle_number)
    .bind(award.player_id)
    .bind(award.session_id)
    .bind(award.awarded_amount.micros())
    .bind(award.trigger_mode)
    .bind(award.contribution_id)
    .bind(award.origin)
    .bind(award.winner_account_id)
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<AwardRecord, sqlx::Error> {
    sqlx::query_as(&format!("{AWARD_SELECT} where a.id = $1")).bind(id).fetch_one(conn).await
}

pub async fn for_cycle(
    conn: &mut PgConnection,
    jackpot_id: &str,
    cycle_number: i64,
) -> Result<Option<AwardRecord>, sqlx::Error> {
    sqlx::query_as(&format!("{AWARD_SELECT} where a.jackpot_id = $1 and a.cycle_number = $2"))
        .bind(jackpot_id)
        .bind(cycle_number)
        .fetch_optional(conn)
        .await
}

pub async fn for_contributions(
    conn: &mut PgConnection,
    contribution_ids: &[i64],
) -> Result<Vec<AwardRecord>, sqlx::Error> {
    sqlx::query_as(&format!("{AWARD_SELECT} where a.contribution_id = any($1)"))
        .bind(contribution_ids)
        .fetch_all(conn)
        .await
}

/// The latest `per_jackpot` awards of each of `jackpot_ids`, newest first, in
/// one query.
pub async fn recent(
    conn: &mut PgConnection,
    jackpot_ids: &[&str],
    per_jackpot: i64,
) -> Result<Vec<AwardRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select ranked.* from (
             select r.*, row_number() over (partition by r.jackpot_id order by r.id desc) as rank
               from ({AWARD_SELECT} where a.jackpot_id = any($1)) r) ranked
          where ranked.rank <= $2
          order by ranked.jackpot_id, ranked.id desc"
    ))
    .bind(jackpot_ids)
    .bind(per_jackpot)
    .fetch_all(conn)
    .await
}

/// What a claim got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    Won,
    AlreadyAwarded,
    CycleNotOpen,
}

impl ClaimOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            ClaimOutcome::Won => "won",
            ClaimOutcome::AlreadyAwarded => "already_awarded",
            ClaimOutcome::CycleNotOpen => "cycle_not_open",
        }
    }

    fn parse(text: &str) -> Result<ClaimOutcome, sqlx::Error> {
        match text {
            "won" => Ok(ClaimOutcome::Won),
            "already_awarded" => Ok(ClaimOutcome::AlreadyAwarded),
            "cycle_not_open" => Ok(ClaimOutcome::CycleNotOpen),
            other => Err(sqlx::Error::Decode(format!("unknown claim outcome {other:?}").into())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Claim {
    pub id: i64,
    pub cycle_number: i64,
    pub request_hash: Vec<u8>,
    pub outcome: ClaimOutcome,
    pub award_id: Option<i64>,
}

pub async fn find_claim(
    conn: &mut PgConnection,
    jackpot_id: &str,
    origin: &str,
    idempotency_key: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct ClaimRow {
        id: i64,
        cycle_number: i64,
        request_hash: Vec<u8>,
        outcome: String,
        award_id: Option<i64>,
    }
    let row: Option<ClaimRow> = sqlx::query_as(
        "select id, cycle_number, request_hash, outcome, award_id
           from jackpot_award_claims where jackpot_id = $1 and origin = $2 and idempotency_key = $3",
    )
    .bind(jackpot_id)
    .bind(origin)
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Claim {
            id: row.id,
            cycle_number: row.cycle_number,
            request_hash: row.request_hash,
            outcome: ClaimOutcome::parse(&row.outcome)?,
            award_id: row.award_id,
        })
    })
    .transpose()
}

pub struct NewClaim<'a> {
    pub jackpot_id: &'a str,
    pub origin: &'a str,
    pub cycle_number: i64,
    pub player_id: &'a str,
    pub session_id: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub outcome: ClaimOutcome,
    pub award_id: Option<i64>,
}

pub async fn insert_claim(conn: &mut PgConnection, claim: &NewClaim<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into jackpot_award_claims (jackpot_id, cycle_number, player_id, session_id, idempotency_key,
                                           request_hash, outcome, award_id, origin)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(claim.jackpot_id)
    .bind(claim.cycle_number)
    .bind(claim.player_id)
    .bind(claim.session_id)
    .bind(claim.idempotency_key)
    .bind(claim.request_hash)
    .bind(claim.outcome.as_str())
    .bind(claim.award_id)
    .bind(claim.origin)
    .fetch_one(conn)
    .await
}

/// Locks an award's row for the rest of the transaction and reads it.
pub async fn lock(conn: &mut PgConnection, id: i64) -> Result<Option<AwardRecord>, sqlx::Error> {
    sqlx::query("select id from jackpot_awards where id = $1 for update")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(&format!("{AWARD_SELECT} where a.id = $1")).bind(id).fetch_optional(conn).await
}

/// A rolled-back award, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RollbackRecord {
    pub award_id: i64,
    pub amount_micros: i64,
    pub rolled_back_by: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Marks the award rolled back and records who, why and how much.
pub async fn record_rollback(
    conn: &mut PgConnection,
    award: &AwardRecord,
    by: &str,
    reason: &str,
) -> Result<RollbackRecord, sqlx::Error> {
    sqlx::query("update jackpot_awards set status = 'rolled_back' where id = $1")
        .bind(award.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "insert into jackpot_award_rollbacks (award_id, jackpot_id, amount_micros, rolled_back_by, reason)
         values ($1, $2, $3, $4, $5)
         returning award_id, amount_micros, rolled_back_by, reason, created_at",
    )
    .bind(award.id)
    .bind(&award.jackpot_id)
    .bind(award.awarded_amount_micros)
    .bind(by)
    .bind(reason)
    .fetch_one(conn)
    .await
}
