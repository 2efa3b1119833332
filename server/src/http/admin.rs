//! Operator endpoints: signed requests with the `admin` role only (see
//! [`super::signed`]).

use axum::extract::{Path, State};
use axum::routing::{patch, post};
use axum::{Extension, Json, Router};
use domain::jackpot::{Rules, Status, TriggerMode};
use domain::money::{Amount, Rate, MICROS_PER_UNIT};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::ApiJson;
use super::service::jackpot_not_found;
use super::signed::Caller;
use crate::engine::{ChangeReceipt, ConfigError, JackpotEdit, RollbackError};
use crate::reconciliation::{self, Report, Trigger};
use crate::state::AppState;

/// The largest maximum a jackpot may have: keeps every sum far from overflowing.
const MAX_VALUE_LIMIT: Amount = Amount::from_micros(1_000_000_000 * MICROS_PER_UNIT);
const NAME_LENGTH_MAX: usize = 80;
const REASON_LENGTH_MAX: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/reconciliations", post(reconcile))
        .route("/admin/jackpots/{id}", patch(configure))
        .route("/admin/awards/{id}/rollback", post(rollback))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// Why: kept with the rollback.
    reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RollbackView {
    award_id: i64,
    status: &'static str,
    /// What moved back from the winner's wallet to the jackpot's reserve.
    amount: Amount,
    rolled_back_by: String,
    reason: String,
    rolled_back_at: chrono::DateTime<chrono::Utc>,
}

/// Rolls an award back: a compensating transfer, never an edit or a delete.
async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(award_id): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<RollbackView>, ApiError> {
    let not_found = || ApiError::new(ErrorCode::AwardNotFound, format!("no award with id {award_id:?}"));
    let id: i64 = award_id.parse().map_err(|_| not_found())?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_LENGTH_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("`reason` is 1 to {REASON_LENGTH_MAX} characters"),
        ));
    }
    match state.engine.rollback(id, &caller.actor(), reason).await? {
        Ok(record) => Ok(Json(RollbackView {
            award_id: record.award_id,
            status: "rolled_back",
            amount: Amount::from_micros(record.amount_micros),
            rolled_back_by: record.rolled_back_by,
            reason: record.reason,
            rolled_back_at: record.created_at,
        })),
        Err(RollbackError::AwardNotFound) => Err(not_found()),
        Err(error @ RollbackError::AlreadyRolledBack) => {
            Err(ApiError::new(ErrorCode::AwardAlreadyRolledBack, error.to_string()))
        }
        Err(error @ RollbackError::InsufficientFunds { .. }) => {
            Err(ApiError::new(ErrorCode::InsufficientFunds, error.to_string()))
        }
    }
}

/// Runs a reconciliation now and answers its report.
async fn reconcile(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(reconciliation::run(&state.db, Trigger::Admin, &caller.actor()).await?))
}

/// A configuration change: every field but `reason` is optional.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigureBody {
    name: Option<String>,
    status: Option<Status>,
    contribution_rate_ppm: Option<u32>,
    reserve_share_ppm: Option<u32>,
    seed: Option<Amount>,
    max_value: Option<Amount>,
    min_bet: Option<Amount>,
    trigger_mode: Option<TriggerMode>,
    /// Why: kept with the change.
    reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RulesView {
    contribution_rate_ppm: u32,
    reserve_share_ppm: u32,
    seed: Amount,
    max_value: Amount,
    min_bet: Amount,
    trigger_mode: TriggerMode,
}

impl From<Rules> for RulesView {
    fn from(rules: Rules) -> RulesView {
        RulesView {
            contribution_rate_ppm: rules.contribution_rate().ppm(),
            reserve_share_ppm: rules.reserve_share().ppm(),
            seed: rules.seed(),
            max_value: rules.max_value(),
            min_bet: rules.min_bet(),
            trigger_mode: rules.trigger_mode(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeView {
    change_id: i64,
    jackpot_id: String,
    name: String,
    status: Status,
    /// The configuration's rules: the next cycle's.
    rules: RulesView,
    running_cycle: i64,
    /// The rules the running cycle keeps until it is awarded.
    running_cycle_rules: RulesView,
    /// The first cycle under `rules`; null when this change left the rules alone.
    applies_from_cycle: Option<i64>,
}

impl From<ChangeReceipt> for ChangeView {
    fn from(receipt: ChangeReceipt) -> ChangeView {
        ChangeView {
            change_id: receipt.change_id,
            jackpot_id: receipt.jackpot.id,
            name: receipt.jackpot.name,
            status: receipt.jackpot.status,
            rules: receipt.jackpot.rules.into(),
            running_cycle: receipt.running_cycle,
            running_cycle_rules: receipt.running_rules.into(),
            applies_from_cycle: receipt.applies_from_cycle,
        }
    }
}

/// Changes a jackpot's name, status or rules. Rules apply from the next cycle.
async fn configure(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> Result<Json<ChangeView>, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidJackpotConfig, message);
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_LENGTH_MAX {
        return Err(invalid(format!("`reason` is 1 to {REASON_LENGTH_MAX} characters")));
    }
    if let Some(name) = &body.name {
        if name.trim().is_empty() || name.chars().count() > NAME_LENGTH_MAX {
            return Err(invalid(format!("`name` is 1 to {NAME_LENGTH_MAX} characters")));
        }
    }
    let rate = |field: &str, ppm: Option<u32>| {
        ppm.map(Rate::from_ppm)
            .transpose()
            .map_err(|_| invalid(format!("`{field}` is 0 to 1,000,000 parts per million")))
    };
    for (field, amount) in [("seed", body.seed), ("maxValue", body.max_value), ("minBet", body.min_bet)] {
        if amount.is_some_and(|a| a.is_negative() || a > MAX_VALUE_LIMIT) {
            return Err(invalid(format!("`{field}` is 0 to {MAX_VALUE_LIMIT}")));
        }
    }
    let edit = JackpotEdit {
        name: body.name.map(|name| name.trim().to_owned()),
        status: body.status,
        contribution_rate: rate("contributionRatePpm", body.contribution_rate_ppm)?,
        reserve_share: rate("reserveSharePpm", body.reserve_share_ppm)?,
        seed: body.seed,
        max_value: body.max_value,
        min_bet: body.min_bet,
        trigger_mode: body.trigger_mode,
    };
    match state.engine.configure(&id, &edit, &caller.actor(), reason).await? {
        Ok(receipt) => Ok(Json(receipt.into())),
        Err(ConfigError::JackpotNotFound) => Err(jackpot_not_found(&id)),
        Err(error) => Err(invalid(error.to_string())),
    }
}
