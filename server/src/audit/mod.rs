//! The audit trail (docs/AUDIT.md). Every write — a batch of contributions,
//! an award, a rollback, a configuration change, a new jackpot, a
//! reconciliation run — appends a record in its own transaction, as that
//! transaction's last statement: the chain's head is then locked only for the
//! moment before the commit, and never by anyone waiting for another lock.
//!
//! The database numbers and links the records (`cekpot_audit_append`, see the
//! migration); [`verify`] re-checks the links, the [`shipper`] seals them into
//! segments in the WORM bucket, and [`bucket`] talks to that bucket.

pub mod bucket;
pub mod shipper;
pub mod verify;

use serde_json::Value;
use sqlx::PgConnection;

/// Who asked for a write: a service key's id (or `system:<task>`), and the
/// request's `x-request-id` when it came over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub key_id: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn new(key_id: impl Into<String>, request_id: Option<String>) -> Actor {
        Actor { key_id: key_id.into(), request_id }
    }

    /// The server itself: the scheduler, the command line, start-up.
    pub fn system(task: &str) -> Actor {
        Actor { key_id: format!("system:{task}"), request_id: None }
    }
}

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ContributionBatch,
    Award,
    AwardRollback,
    ConfigChange,
    JackpotCreated,
    Reconciliation,
    /// A batch of the Mini App's spins: their bets and wins, wallet by wallet.
    SpinBatch,
    /// A new player's demo credit.
    DemoCredit,
    Deposit,
    /// A player's own limits or self-exclusion.
    LimitsChanged,
    /// A player's provably-fair seed revealed and the next one started.
    SeedRotated,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::ContributionBatch => "contribution_batch",
            Action::Award => "award",
            Action::AwardRollback => "award_rollback",
            Action::ConfigChange => "config_change",
            Action::JackpotCreated => "jackpot_created",
            Action::Reconciliation => "reconciliation",
            Action::SpinBatch => "spin_batch",
            Action::DemoCredit => "demo_credit",
            Action::Deposit => "deposit",
            Action::LimitsChanged => "limits_changed",
            Action::SeedRotated => "seed_rotated",
        }
    }
}

/// A record to append. Amounts are micro-units, as everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub actor: Actor,
    pub action: Action,
    pub jackpot_id: Option<String>,
    pub before_micros: Option<i64>,
    pub after_micros: Option<i64>,
    pub detail: Value,
}

impl Entry {
    /// A record of no one jackpot and no before/after amount: a player's own
    /// change, or a batch whose amounts are in `detail`.
    pub fn of(actor: Actor, action: Action, detail: Value) -> Entry {
        Entry { actor, action, jackpot_id: None, before_micros: None, after_micros: None, detail }
    }
}

/// Appends `entries` in order; answers their sequence numbers. Call it as the
/// transaction's last statement (see the module's comment).
pub async fn append(conn: &mut PgConnection, entries: &[Entry]) -> Result<Vec<i64>, sqlx::Error> {
    let mut numbers = Vec::with_capacity(entries.len());
    for entry in entries {
        let seq: i64 = sqlx::query_scalar("select cekpot_audit_append($1, $2, $3, $4, $5, $6, $7)")
            .bind(&entry.actor.key_id)
            .bind(entry.action.as_str())
            .bind(&entry.actor.request_id)
            .bind(&entry.jackpot_id)
            .bind(entry.before_micros)
            .bind(entry.after_micros)
            .bind(&entry.detail)
            .fetch_one(&mut *conn)
            .await?;
        numbers.push(seq);
    }
    Ok(numbers)
}

/// The common table expression `closing`, which appends `entry` within a
/// batch's statement, its values bound to `params`: after the records the
/// CTE named `after` appends, when there is one (a CTE that a statement does
/// not read is not run, so the statement reads `closing`, and reading
/// `after` first orders the two). Like [`append`], it belongs in the
/// transaction's last statement.
pub fn append_cte(params: &mut crate::db::params::Params, entry: &Entry, after: Option<&str>) -> String {
    let actor = params.bind(entry.actor.key_id.clone());
    let action = params.bind(entry.action.as_str());
    let request_id = params.bind(entry.actor.request_id.clone());
    let jackpot_id = params.bind(entry.jackpot_id.clone());
    let before = params.bind(entry.before_micros);
    let after_micros = params.bind(entry.after_micros);
    let detail = params.bind(entry.detail.clone());
    let from = match after {
        Some(cte) => format!(" from (select count(*) from {cte}) as earlier"),
        None => String::new(),
    };
    format!(
        "closing as (
             select cekpot_audit_append({actor}, {action}, {request_id}, {jackpot_id}, {before}::bigint,
                                        {after_micros}::bigint, {detail}::jsonb) as seq{from})"
    )
}

/// Records from `from` on, in order, at most `limit`.
pub async fn records_from(
    conn: &mut PgConnection,
    from: i64,
    limit: i64,
    bytes_max: i64,
) -> Result<Vec<domain::audit::Record>, sqlx::Error> {
    // Up to the first record that brings the bodies to `bytes_max` or past
    // it: at least one record, and never much more than `bytes_max` in memory.
    let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = sqlx::query_as(
        "select seq, prev_hash, hash, body from (
             select seq, prev_hash, hash, body,
                    sum(octet_length(body)) over (order by seq) - octet_length(body) as bytes_before
               from (select * from audit_records where seq >= $1 order by seq limit $2) r) w
          where bytes_before < $3
          order by seq",
    )
    .bind(from)
    .bind(limit)
    .bind(bytes_max)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, prev_hash, hash, body)| domain::audit::Record { seq, prev_hash, hash, body })
        .collect())
}
