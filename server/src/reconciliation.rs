//! Reconciliation runs: on a schedule (hourly), from the admin API and from the
//! command line. Each run reads one consistent snapshot, compares every pool,
//! award, reserve and balance with what the money-moving rows say it must be,
//! and stores a report with the mismatch ratio.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::audit::{self, Action, Actor, Entry};
use crate::db::reconciliation::{self, Mismatch};

/// Keeps two instances from running the scheduled job at once.
const LEASE_KEY: i64 = 0x0063_656b_706f_7402;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Admin,
    Cli,
}

impl Trigger {
    const fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Admin => "admin",
            Trigger::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: i64,
    pub checks: i64,
    pub mismatches: Vec<Mismatch>,
    /// mismatches / checks, in parts per million
    pub mismatch_ratio_ppm: i64,
    pub ledger_sum_micros: i64,
}

/// Runs the checks and stores the report.
pub async fn run(db: &PgPool, trigger: Trigger, actor: &Actor) -> Result<Report, sqlx::Error> {
    let started_at = chrono::Utc::now();
    let mut tx = db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read").execute(&mut *tx).await?;
    let all = reconciliation::checks(&mut tx).await?;
    tx.commit().await?;
    let ledger_sum_micros = all.iter().find(|m| m.check == "ledger_sum").map_or(0, |m| m.actual_micros);
    let checks = all.len() as i64;
    let mismatches: Vec<Mismatch> =
        all.into_iter().filter(|m| m.expected_micros != m.actual_micros).collect();
    let mismatch_ratio_ppm = if checks == 0 { 0 } else { mismatches.len() as i64 * 1_000_000 / checks };
    let stored = reconciliation::Run {
        trigger: trigger.as_str(),
        started_at,
        checks,
        mismatches: &mismatches,
        mismatch_ratio_ppm,
        ledger_sum_micros,
    };
    let mut tx = db.begin().await?;
    let run_id = reconciliation::record(&mut tx, &stored).await?;
    let entry = Entry {
        actor: actor.clone(),
        action: Action::Reconciliation,
        jackpot_id: None,
        before_micros: None,
        after_micros: None,
        detail: serde_json::json!({
            "runId": run_id,
            "trigger": trigger.as_str(),
            "checks": checks,
            "mismatches": mismatches.len(),
            "mismatchRatioPpm": mismatch_ratio_ppm,
            "ledgerSumMicros": ledger_sum_micros,
        }),
    };
    audit::append(&mut tx, &[entry]).await?;
    tx.commit().await?;
    metrics::gauge!("cekpot_reconciliation_mismatch_ratio").set(crate::metrics::ratio(mismatch_ratio_ppm));
    metrics::gauge!("cekpot_reconciliation_mismatches").set(mismatches.len() as f64);
    metrics::counter!("cekpot_reconciliation_runs_total", "trigger" => trigger.as_str()).increment(1);
    if mismatches.is_empty() {
        tracing::info!(run_id, checks, "reconciliation: every check holds");
    } else {
        tracing::error!(run_id, checks, mismatches = mismatches.len(), "reconciliation found mismatches");
    }
    Ok(Report { run_id, checks, mismatches, mismatch_ratio_ppm, ledger_sum_micros })
}

/// Runs every `period` on the instance that holds the lease; the others skip.
pub fn schedule(db: PgPool, period: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate: let start-up finish first
        loop {
            ticks.tick().await;
            if let Err(error) = run_with_lease(&db).await {
                tracing::warn!(%error, "scheduled reconciliation did not run");
            }
        }
    });
}

async fn run_with_lease(db: &PgPool) -> Result<(), sqlx::Error> {
    let mut lease = db.acquire().await?;
    let held: bool =
        sqlx::query_scalar("select pg_try_advisory_lock($1)").bind(LEASE_KEY).fetch_one(&mut *lease).await?;
    if !held {
        tracing::debug!("another instance holds the reconciliation lease");
        return Ok(());
    }
    let result = run(db, Trigger::Schedule, &Actor::system("schedule")).await.map(drop);
    sqlx::query("select pg_advisory_unlock($1)").bind(LEASE_KEY).execute(&mut *lease).await?;
    result
}
