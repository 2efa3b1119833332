//! The jackpot service API for game providers: read jackpots, contribute a
//! share of each bet, and award provider-triggered pools. JSON, camelCase,
//! amounts as decimal strings. Writes take an `Idempotency-Key` header: the same
//! key with the same body answers the original response again.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use domain::jackpot::{ContributionRejected, Progress, TriggerMode, BET_MAX};
use domain::money::{Amount, Currency, Total};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::ApiJson;
use super::signed::Caller;
use crate::db;
use crate::engine::{
    AwardError, AwardReceipt, AwardRequest, ContributionError, ContributionReceipt, ContributionRequest,
    Origin,
};
use crate::state::AppState;

/// How many of the latest awards a jackpot shows.
const RECENT_AWARDS: i64 = 5;
const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 128;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jackpots", get(list))
        .route("/jackpot/{id}", get(show))
        .route("/jackpot/{id}/contribute", post(contribute))
        .route("/jackpot/{id}/award", post(award))
}

// ---- Reads ------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JackpotView {
    id: String,
    name: String,
    tier: String,
    currency: String,
    status: String,
    trigger_mode: String,
    contribution_rate_ppm: i32,
    reserve_share_ppm: i32,
    min_bet: Amount,
    value: Amount,
    seed: Amount,
    max_value: Amount,
    progress_bp: Progress,
    cycle: i64,
    /// SHA-256 of the open cycle's drop point and salt (must-drop only).
    commitment: Option<String>,
    meters: Meters,
    last_awards: Vec<RecentAward>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Meters {
    qualifying_bets: i64,
    qualifying_bet_amount: Total,
    contributions: Total,
    hits: i64,
    total_won: Total,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecentAward {
    award_id: i64,
    cycle: i64,
    amount: Amount,
    awarded_at: DateTime<Utc>,
    winner: String,
}

#[derive(Debug, Serialize)]
struct JackpotViews {
    jackpots: Vec<JackpotView>,
}

async fn list(State(state): State<AppState>) -> Result<Json<JackpotViews>, ApiError> {
    let jackpots = views(&state, None, super::jackpots::PAGE_SIZE_MAX).await?;
    Ok(Json(JackpotViews { jackpots }))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<JackpotView>, ApiError> {
    let view = views(&state, Some(&id), 1).await?.pop().ok_or_else(|| jackpot_not_found(&id))?;
    Ok(Json(view))
}

/// The jackpots with their latest awards: two queries, however many jackpots.
async fn views(state: &AppState, id: Option<&str>, limit: i64) -> Result<Vec<JackpotView>, ApiError> {
    let mut conn = state.db.acquire().await?;
    let rows = db::jackpots::details(&mut conn, id, limit).await?;
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let mut awards: HashMap<String, Vec<RecentAward>> = HashMap::new();
    for award in db::awards::recent(&mut conn, &ids, RECENT_AWARDS).await? {
        awards.entry(award.jackpot_id).or_default().push(RecentAward {
            award_id: award.id,
            cycle: award.cycle_number,
            amount: Amount::from_micros(award.awarded_amount_micros),
            awarded_at: award.created_at,
            winner: mask(&award.player_id),
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let last_awards = awards.remove(&row.id).unwrap_or_default();
            view(row, last_awards)
        })
        .collect())
}

fn view(row: db::jackpots::DetailRow, last_awards: Vec<RecentAward>) -> JackpotView {
    let value = Amount::from_micros(row.value_micros);
    let max_value = Amount::from_micros(row.max_value_micros);
    JackpotView {
        id: row.id,
        name: row.name,
        tier: row.tier,
        currency: row.currency,
        status: row.status,
        trigger_mode: row.trigger_mode,
        contribution_rate_ppm: row.contribution_rate_ppm,
        reserve_share_ppm: row.reserve_share_ppm,
        min_bet: Amount::from_micros(row.min_bet_micros),
        value,
        seed: Amount::from_micros(row.seed_micros),
        max_value,
        progress_bp: Progress::of(value, max_value),
        cycle: row.cycle_number,
        commitment: row.commitment,
        meters: Meters {
            qualifying_bets: row.bets_count,
            qualifying_bet_amount: row.bets_micros.into(),
            contributions: row.contributions_micros.into(),
            hits: row.hits,
            total_won: row.won_micros.into(),
        },
        last_awards,
    }
}

/// `player-1234` → `pl…34`: enough to recognise one's own win, not to identify others.
fn mask(player_id: &str) -> String {
    let chars: Vec<char> = player_id.chars().collect();
    if chars.len() <= 4 {
        return "…".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

// ---- Writes -----------------------------------------------------------------

/// The `Idempotency-Key` header: 1 to 128 printable ASCII characters.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingIdempotencyKey,
                "send an `Idempotency-Key` header with every write",
            )
        })?;
        let key = value.to_str().ok().filter(|key| {
            (1..=IDEMPOTENCY_KEY_LENGTH_MAX).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
        });
        key.map(|key| IdempotencyKey(key.to_owned())).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                format!("an idempotency key is 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} printable ASCII characters"),
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContributeBody {
    game_id: String,
    player_id: String,
    bet_amount: Amount,
    currency: Currency,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContributeResponse {
    contribution_id: i64,
    jackpot_id: String,
    cycle: i64,
    bet_amount: Amount,
    /// The accepted share of the bet: `poolShare + reserveShare`.
    contribution: Amount,
    pool_share: Amount,
    reserve_share: Amount,
    /// The pool after this contribution.
    value: Amount,
    /// Present when this contribution won the pool.
    award: Option<AwardView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AwardView {
    award_id: i64,
    jackpot_id: String,
    cycle: i64,
    player_id: String,
    session_id: Option<String>,
    awarded_amount: Amount,
    trigger_mode: TriggerMode,
    contribution_id: Option<i64>,
    status: &'static str,
    awarded_at: DateTime<Utc>,
    drop_point: Option<Amount>,
    salt: Option<String>,
    commitment: Option<String>,
}

impl From<AwardReceipt> for AwardView {
    fn from(award: AwardReceipt) -> AwardView {
        AwardView {
            award_id: award.award_id,
            jackpot_id: award.jackpot_id,
            cycle: award.cycle,
            player_id: award.player_id,
            session_id: award.session_id,
            awarded_amount: award.awarded_amount,
            trigger_mode: award.trigger_mode,
            contribution_id: award.contribution_id,
            status: if award.rolled_back { "rolled_back" } else { "paid" },
            awarded_at: award.awarded_at,
            drop_point: award.drop_point,
            salt: award.salt,
            commitment: award.commitment,
        }
    }
}

impl From<ContributionReceipt> for ContributeResponse {
    fn from(receipt: ContributionReceipt) -> ContributeResponse {
        ContributeResponse {
            contribution_id: receipt.contribution_id,
            jackpot_id: receipt.jackpot_id,
            cycle: receipt.cycle,
            bet_amount: receipt.bet,
            contribution: receipt.contribution,
            pool_share: receipt.pool_share,
            reserve_share: receipt.reserve_share,
            value: receipt.value,
            award: receipt.award.map(AwardView::from),
        }
    }
}

async fn contribute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<ContributeBody>,
) -> Result<Json<ContributeResponse>, ApiError> {
    validate_reference("gameId", &body.game_id)?;
    validate_reference("playerId", &body.player_id)?;
    let service_key = &state.settings.service.keys[caller.key_index];
    if !service_key.games.contains(&body.game_id) {
        return Err(ApiError::new(
            ErrorCode::GameNotAllowed,
            format!("the key {:?} may not contribute under game {:?}", service_key.id, body.game_id),
        ));
    }
    may_touch(service_key, &id)?;
    let max = BET_MAX.min(Amount::from_micros(service_key.bet_max_micros));
    if body.bet_amount > max {
        return Err(ApiError::new(
            ErrorCode::BetTooLarge,
            format!("the largest bet this key may send is {max}"),
        )
        .with_details(serde_json::json!({ "maxBet": max })));
    }
    let day = chrono::Utc::now().date_naive();
    let bet_micros = body.bet_amount.micros().max(0);
    let reserved =
        state.volumes.reserve(&service_key.id, day, bet_micros, service_key.daily_volume_max_micros).await;
    match reserved.map_err(ApiError::unavailable)? {
        Ok(()) => {}
        Err(over) => {
            let limit = Amount::from_micros(service_key.daily_volume_max_micros);
            return Err(ApiError::new(
                ErrorCode::VolumeLimitReached,
                format!("this bet would pass the key's daily volume of {limit}"),
            )
            .with_details(serde_json::json!({
                "limit": limit,
                "betToday": Amount::from_micros(over.bet_today_micros),
            })));
        }
    }
    let request = ContributionRequest {
        actor: caller.actor(),
        origin: caller.origin(),
        jackpot_id: id,
        game_id: body.game_id,
        player_id: body.player_id,
        bet: body.bet_amount,
        currency: body.currency,
        idempotency_key: key,
    };
    let jackpot_id = request.jackpot_id.clone();
    let outcome = state.engine.contribute(request).await;
    if !matches!(outcome, Ok(Ok(_))) {
        // Not taken: the bet does not count towards the day's volume.
        if let Err(error) = state.volumes.release(&service_key.id, day, bet_micros).await {
            tracing::warn!(%error, key_id = %service_key.id, "a refused bet's volume could not be released");
        }
    }
    match outcome? {
        Ok(receipt) => Ok(Json(receipt.into())),
        Err(error) => Err(contribution_error(&jackpot_id, error)),
    }
}

fn contribution_error(jackpot_id: &str, error: ContributionError) -> ApiError {
    let code = match error {
        ContributionError::JackpotNotFound => return jackpot_not_found(jackpot_id),
        ContributionError::JackpotPaused => ErrorCode::JackpotPaused,
        ContributionError::CurrencyMismatch => ErrorCode::CurrencyMismatch,
        ContributionError::GameNotEligible => ErrorCode::GameNotEligible,
        ContributionError::Rejected(ContributionRejected::NonPositiveBet) => ErrorCode::BetNotPositive,
        ContributionError::Rejected(ContributionRejected::BelowMinimumBet) => ErrorCode::BelowMinimumBet,
        ContributionError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
    };
    ApiError::new(code, error.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AwardBody {
    player_id: String,
    session_id: String,
    cycle: i64,
}

async fn award(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<AwardBody>,
) -> Result<Json<AwardView>, ApiError> {
    validate_reference("playerId", &body.player_id)?;
    validate_reference("sessionId", &body.session_id)?;
    may_touch(&state.settings.service.keys[caller.key_index], &id)?;
    let request = AwardRequest {
        actor: caller.actor(),
        origin: caller.origin(),
        jackpot_id: id.clone(),
        player_id: body.player_id,
        session_id: body.session_id,
        cycle: body.cycle,
        idempotency_key: key,
    };
    let origin = request.origin.clone();
    match state.engine.award(request).await? {
        Ok(receipt) => Ok(Json(receipt.into())),
        Err(error) => Err(award_error(&id, error, &origin)),
    }
}

/// `origin` is the refused claim's: an award another origin won shows its
/// winner masked and no session, so a provider learns that it lost, not who won.
fn award_error(jackpot_id: &str, error: AwardError, origin: &Origin) -> ApiError {
    let message = error.to_string();
    match error {
        AwardError::JackpotNotFound => jackpot_not_found(jackpot_id),
        AwardError::JackpotPaused => ApiError::new(ErrorCode::JackpotPaused, message),
        AwardError::NotProviderTriggered => ApiError::new(ErrorCode::AwardNotAllowed, message),
        AwardError::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, message),
        AwardError::CycleNotOpen { requested, open } => ApiError::new(ErrorCode::CycleNotOpen, message)
            .with_details(serde_json::json!({ "requestedCycle": requested, "openCycle": open })),
        AwardError::AlreadyAwarded(award) => {
            let theirs = award.origin != origin.as_str();
            let mut view = AwardView::from(*award);
            if theirs {
                view.player_id = mask(&view.player_id);
                view.session_id = None;
            }
            ApiError::new(ErrorCode::CycleAlreadyAwarded, message)
                .with_details(serde_json::json!({ "award": view }))
        }
    }
}

/// Whether the key may contribute to or award `jackpot`.
fn may_touch(key: &crate::config::ServiceKey, jackpot: &str) -> Result<(), ApiError> {
    if key.jackpots.iter().any(|j| j == jackpot) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::JackpotNotAllowed,
        format!("the key {:?} may not contribute to or award jackpot {jackpot:?}", key.id),
    ))
}

pub(super) fn jackpot_not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::JackpotNotFound, format!("no jackpot with id {id:?}"))
}

/// Ids from callers (games, players, sessions): see [`domain::ids::check_reference`].
fn validate_reference(field: &str, value: &str) -> Result<(), ApiError> {
    domain::ids::check_reference(value)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("`{field}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winners_are_masked() {
        assert_eq!(mask("player-1234"), "pl…34");
        assert_eq!(mask("abcd"), "…");
        assert_eq!(mask("äöüßxy"), "äö…xy");
    }
}
