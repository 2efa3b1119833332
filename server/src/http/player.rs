//! The player's API, behind `Authorization: Bearer <token>` from
//! `POST /api/auth/telegram`: the wallet and its history, spins, the
//! provably-fair seeds and their check, and the player's own limits.

use app::api::{LineWinView, SpinAward, SpinContribution, SpinFairness, SpinReceipt};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::money::Amount;
use domain::play::{BetRefused, DepositRefused, LimitChange, PlayRefusal};
use domain::seeds;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, ApiQuery};
use super::service::IdempotencyKey;
use crate::audit::Actor;
use crate::db::ledger::AccountKind;
use crate::db::{players, spins};
use crate::engine::{self, DepositRefusal, DepositRequest, SpinRefusal, SpinRequest};
use crate::state::AppState;

/// The most entries one history page holds.
pub const HISTORY_PAGE_MAX: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/wallet", get(wallet))
        .route("/wallet/history", get(history))
        .route("/wallet/deposit", post(deposit))
        .route("/spin", post(spin))
        .route("/fairness", get(fairness))
        .route("/fairness/rotate", post(rotate))
        .route("/fairness/verify", get(verify))
        .route("/limits", get(limits).put(set_limits))
}

/// A valid token whose player is gone.
fn no_such_player() -> ApiError {
    ApiError::new(ErrorCode::TokenInvalid, "the token's player does not exist")
}

/// The signed-in player: the `sub` of a valid bearer token.
pub struct PlayerId(pub i64);

impl FromRequestParts<AppState> for PlayerId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                ErrorCode::TokenMissing,
                "send `Authorization: Bearer <token>` (from POST /api/auth/telegram)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let claims = token.and_then(|t| state.tokens.check(t)).ok_or_else(|| {
            ApiError::new(
                ErrorCode::TokenInvalid,
                "the token is malformed, not ours, or expired: renew it (POST /api/auth/refresh) or sign in again",
            )
        })?;
        let player: i64 = claims
            .sub
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::TokenInvalid, "the token names no player"))?;
        state
            .rates
            .check(crate::rates::Scope::Player, &player.to_string())
            .await
            .map_err(|limited| ApiError::rate_limited("player", limited))?;
        Ok(PlayerId(player))
    }
}

async fn wallet(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
) -> Result<Json<app::api::WalletView>, ApiError> {
    let currency = state.spins.game().currency;
    let balance: Option<i64> = sqlx::query_scalar(
        "select balance_micros from ledger_accounts where kind = $1 and owner = $2 and currency = $3",
    )
    .bind(AccountKind::PlayerWallet.as_str())
    .bind(player.to_string())
    .bind(currency.as_str())
    .fetch_optional(&state.db)
    .await?;
    Ok(Json(app::api::WalletView { currency, balance: Amount::from_micros(balance.unwrap_or(0)) }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// Entries per page, 1 to 100 (default 50).
    #[serde(default)]
    limit: Option<i64>,
    /// Only entries older than this id (the previous page's `nextBefore`).
    #[serde(default)]
    before: Option<i64>,
}

async fn history(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<app::api::WalletHistory>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=HISTORY_PAGE_MAX).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("limit is 1 to {HISTORY_PAGE_MAX}")));
    }
    if query.before.is_some_and(|b| b < 1) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "before is a positive entry id"));
    }
    let currency = state.spins.game().currency;
    let entries = players::wallet_history(
        &mut *state.db.acquire().await?,
        &player.to_string(),
        currency,
        query.before,
        limit + 1,
    )
    .await?;
    let more = entries.len() as i64 > limit;
    let entries: Vec<app::api::WalletEntry> = entries
        .into_iter()
        .take(limit as usize)
        .map(|e| app::api::WalletEntry {
            id: e.id,
            kind: e.kind,
            amount: e.amount,
            reference: e.reference,
            at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
        .collect();
    let next_before = if more { entries.last().map(|e| e.id) } else { None };
    Ok(Json(app::api::WalletHistory { currency, entries, next_before }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositBody {
    amount: Amount,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DepositView {
    transfer_id: i64,
    amount: Amount,
    currency: domain::money::Currency,
    balance: Amount,
    deposited_today: Amount,
}

/// A demo deposit (`players.demo_deposits`): see [`crate::engine::deposit`].
async fn deposit(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    headers: HeaderMap,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DepositBody>,
) -> Result<Json<DepositView>, ApiError> {
    if !state.settings.players.demo_deposits {
        return Err(ApiError::new(ErrorCode::DemoModeOff, "deposits are not available on this server"));
    }
    let request = DepositRequest {
        player_id: player,
        actor: player_actor(player, &headers),
        amount: body.amount,
        idempotency_key: key,
        max: Amount::from_micros(state.settings.players.deposit_max_micros),
    };
    let currency = state.spins.game().currency;
    match engine::deposit(&state.db, state.engine.accounts(), currency, &request).await? {
        Ok(done) => Ok(Json(DepositView {
            transfer_id: done.transfer_id,
            amount: done.amount,
            currency: done.currency,
            balance: done.balance,
            deposited_today: done.deposited_today,
        })),
        Err(refusal) => Err(deposit_refusal(refusal)),
    }
}

fn deposit_refusal(refusal: DepositRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        DepositRefusal::UnknownPlayer => no_such_player(),
        DepositRefusal::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, message),
        DepositRefusal::Refused(DepositRefused::NotPositive | DepositRefused::TooLarge { .. }) => {
            ApiError::new(ErrorCode::InvalidBody, message)
        }
        DepositRefusal::Refused(DepositRefused::SelfExcluded { until }) => {
            ApiError::new(ErrorCode::SelfExcluded, message)
                .with_details(serde_json::json!({ "until": until }))
        }
        DepositRefusal::Refused(DepositRefused::LimitReached { limit, deposited }) => {
            ApiError::new(ErrorCode::DepositLimitReached, message)
                .with_details(serde_json::json!({ "limit": limit, "depositedToday": deposited }))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct SpinBody {
    bet_amount: Amount,
}

/// The player as the audit trail names them (`player:<id>`), with the
/// request's id (the middleware's, `super::is_request_id`).
pub(super) fn player_actor(player: i64, headers: &HeaderMap) -> Actor {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Actor::new(format!("player:{player}"), request_id)
}

async fn spin(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    headers: HeaderMap,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<SpinBody>,
) -> Result<Json<SpinReceipt>, ApiError> {
    let bet = body.bet_amount;
    state.spins.game().bets.check(bet).map_err(bet_refusal)?;
    let request_id = player_actor(player, &headers).request_id;
    let request = SpinRequest { player_id: player, bet, idempotency_key: key, request_id };
    match state.spins.spin(request).await? {
        Ok(spin) => Ok(Json(spin_receipt(spin))),
        Err(refusal) => Err(spin_refusal(refusal)),
    }
}

/// A played spin on the wire.
fn spin_receipt(spin: engine::PlayedSpin) -> SpinReceipt {
    SpinReceipt {
        net: spin.net(),
        is_win: spin.is_win(),
        spin_id: spin.spin_id,
        bet_amount: spin.bet_amount,
        win: spin.win,
        jackpot_win: spin.jackpot_win,
        reels: spin.reels,
        line_wins: spin
            .line_wins
            .into_iter()
            .map(|w| LineWinView { line: w.line, symbol: w.symbol, count: w.count, amount: w.amount })
            .collect(),
        balance: spin.balance,
        currency: spin.currency,
        contributions: spin
            .contributions
            .into_iter()
            .map(|c| SpinContribution { jackpot_id: c.jackpot_id, amount: c.amount, value: c.value })
            .collect(),
        jackpot_awards: spin
            .jackpot_awards
            .into_iter()
            .map(|a| SpinAward {
                award_id: a.award_id,
                jackpot_id: a.jackpot_id,
                cycle: a.cycle,
                amount: a.amount,
            })
            .collect(),
        fairness: SpinFairness {
            seed_id: spin.fairness.seed_id,
            server_seed_hash: spin.fairness.server_seed_hash,
            client_seed: spin.fairness.client_seed,
            nonce: spin.fairness.nonce,
            stops: spin.fairness.stops,
        },
        at: spin.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}

fn bet_refusal(refusal: BetRefused) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        BetRefused::NotPositive => ApiError::new(ErrorCode::BetNotPositive, message),
        BetRefused::BelowMinimum { min } => ApiError::new(ErrorCode::BelowMinimumBet, message)
            .with_details(serde_json::json!({ "minBet": min })),
        BetRefused::TooLarge { max } => {
            ApiError::new(ErrorCode::BetTooLarge, message).with_details(serde_json::json!({ "maxBet": max }))
        }
        BetRefused::OffStep { step } => ApiError::new(ErrorCode::BetStepMismatch, message)
            .with_details(serde_json::json!({ "betStep": step })),
    }
}

fn spin_refusal(refusal: SpinRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        SpinRefusal::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, message),
        SpinRefusal::UnknownPlayer => no_such_player(),
        SpinRefusal::InFlight => ApiError::new(ErrorCode::SpinInProgress, message),
        SpinRefusal::Play(PlayRefusal::SelfExcluded { until }) => {
            ApiError::new(ErrorCode::SelfExcluded, message)
                .with_details(serde_json::json!({ "until": until }))
        }
        SpinRefusal::Play(PlayRefusal::TooSoon { retry_after_ms }) => {
            ApiError::new(ErrorCode::SpinTooSoon, message)
                .with_details(serde_json::json!({ "retryAfterMs": retry_after_ms }))
        }
        SpinRefusal::Play(PlayRefusal::InsufficientFunds { balance }) => {
            ApiError::new(ErrorCode::InsufficientFunds, message)
                .with_details(serde_json::json!({ "balance": balance }))
        }
        SpinRefusal::Play(PlayRefusal::LossLimitReached { limit, lost }) => {
            ApiError::new(ErrorCode::LossLimitReached, message)
                .with_details(serde_json::json!({ "limit": limit, "lostToday": lost }))
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FairnessView {
    seed_id: i64,
    /// SHA-256 of the server seed now in use, shown before it is used.
    server_seed_hash: String,
    client_seed: String,
    /// The nonce of the next spin.
    next_nonce: i64,
    /// SHA-256 of the server seed the next rotation will use, committed now,
    /// before the player picks the client seed it is paired with.
    next_server_seed_hash: String,
    /// Present after a rotation: the seed it ended, now revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    revealed: Option<RevealedSeed>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RevealedSeed {
    seed_id: i64,
    server_seed: String,
    server_seed_hash: String,
    client_seed: String,
    /// Spins made with it: nonces 0 to spins − 1.
    spins: i64,
}

async fn fairness(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
) -> Result<Json<FairnessView>, ApiError> {
    let fairness = engine::fairness(&state.db, player).await?.ok_or_else(no_such_player)?;
    Ok(Json(FairnessView::of(fairness)))
}

impl FairnessView {
    fn of(fairness: engine::Fairness) -> FairnessView {
        let engine::Fairness { seed, next_server_seed_hash, revealed } = fairness;
        FairnessView {
            seed_id: seed.id,
            server_seed_hash: seed.server_seed_hash,
            client_seed: seed.client_seed,
            next_nonce: seed.next_nonce,
            next_server_seed_hash,
            revealed: revealed.map(|old| RevealedSeed {
                seed_id: old.id,
                server_seed: old.server_seed,
                server_seed_hash: old.server_seed_hash,
                client_seed: old.client_seed,
                spins: old.next_nonce,
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateBody {
    /// The next seed's client seed; absent: a random one.
    #[serde(default)]
    client_seed: Option<String>,
}

/// Reveals the server seed in use and starts the one committed before (see
/// [`engine::rotate_seed`]).
async fn rotate(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Json<FairnessView>, ApiError> {
    if let Some(seed) = &body.client_seed {
        seeds::check_client_seed(seed)
            .map_err(|e| ApiError::new(ErrorCode::InvalidClientSeed, e.to_string()))?;
    }
    let actor = player_actor(player, &headers);
    let rotated = engine::rotate_seed(&state.db, player, body.client_seed.as_deref(), &actor)
        .await?
        .ok_or_else(no_such_player)?;
    Ok(Json(FairnessView::of(rotated)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    spin: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    spin_id: i64,
    server_seed: String,
    server_seed_hash: String,
    /// SHA-256 of the revealed server seed equals the hash shown before the spin.
    hash_matches: bool,
    client_seed: String,
    nonce: i64,
    recorded_stops: Vec<i32>,
    recomputed_stops: Vec<usize>,
    /// The recorded stops are the ones the seeds give.
    verified: bool,
    /// The symbols the recomputed stops show, `reels[reel][row]`.
    reels: Vec<Vec<String>>,
}

/// Recomputes a past spin from its revealed seeds with the same pure function
/// the spin used (`domain::seeds::stops`).
async fn verify(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<Json<Verification>, ApiError> {
    let record = spins::get(&mut *state.db.acquire().await?, query.spin)
        .await?
        .filter(|r| r.player_id == player)
        .ok_or_else(|| ApiError::new(ErrorCode::SpinNotFound, "you have no spin with this id"))?;
    if !record.revealed {
        return Err(ApiError::new(
            ErrorCode::SeedNotRevealed,
            "this spin's server seed is still in use: rotate it (POST /api/fairness/rotate) to reveal it",
        ));
    }
    let slot = &state.spins.game().slot;
    let stops =
        seeds::stops(&record.server_seed, &record.client_seed, record.nonce as u64, slot.reel_lengths());
    let outcome = slot.outcome(stops);
    let recorded: Vec<usize> = record.stops.iter().map(|&s| s as usize).collect();
    Ok(Json(Verification {
        spin_id: record.id,
        hash_matches: seeds::server_seed_hash(&record.server_seed) == record.server_seed_hash,
        verified: recorded == stops.to_vec(),
        server_seed: record.server_seed,
        server_seed_hash: record.server_seed_hash,
        client_seed: record.client_seed,
        nonce: record.nonce,
        recorded_stops: record.stops,
        recomputed_stops: stops.to_vec(),
        reels: outcome
            .window
            .iter()
            .map(|reel| reel.iter().map(|&s| slot.symbols[s as usize].id.clone()).collect())
            .collect(),
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LimitsView {
    daily_loss_limit: Option<Amount>,
    daily_deposit_limit: Option<Amount>,
    /// Raised or removed limits waiting for their cooling-off period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<PendingLimits>,
    self_excluded_until: Option<DateTime<Utc>>,
    /// What the player lost (bets − wins) and deposited today (UTC).
    lost_today: Amount,
    deposited_today: Amount,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PendingLimits {
    daily_loss_limit: Option<Amount>,
    daily_deposit_limit: Option<Amount>,
    from: DateTime<Utc>,
}

async fn limits(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
) -> Result<Json<LimitsView>, ApiError> {
    let limits = engine::limits(&state.db, player).await?.ok_or_else(no_such_player)?;
    Ok(Json(LimitsView::of(&limits)))
}

impl LimitsView {
    fn of(limits: &engine::LimitsNow) -> LimitsView {
        let schedule = &limits.schedule;
        let amount = |m: Option<i64>| m.map(Amount::from_micros);
        LimitsView {
            daily_loss_limit: amount(schedule.current.daily_loss_micros),
            daily_deposit_limit: amount(schedule.current.daily_deposit_micros),
            pending: schedule.pending.map(|pending| PendingLimits {
                daily_loss_limit: amount(pending.limits.daily_loss_micros),
                daily_deposit_limit: amount(pending.limits.daily_deposit_micros),
                from: pending.from,
            }),
            self_excluded_until: schedule.excluded_until(limits.now),
            lost_today: Amount::from_micros(limits.day.lost_micros()),
            deposited_today: Amount::from_micros(limits.day.deposits_micros),
        }
    }
}

/// A change of limits. Absent fields stay as they are; `null` removes a limit.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LimitsBody {
    #[serde(default, deserialize_with = "present")]
    daily_loss_limit: Option<Option<Amount>>,
    #[serde(default, deserialize_with = "present")]
    daily_deposit_limit: Option<Option<Amount>>,
    /// Exclude yourself for this many days (1 to 3650). It cannot be undone
    /// or shortened; a longer exclusion replaces a shorter one.
    #[serde(default)]
    self_exclude_days: Option<i64>,
}

async fn set_limits(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LimitsBody>,
) -> Result<Json<LimitsView>, ApiError> {
    let change = LimitChange {
        daily_loss: body.daily_loss_limit,
        daily_deposit: body.daily_deposit_limit,
        self_exclude_days: body.self_exclude_days,
    };
    change.check().map_err(|e| ApiError::new(ErrorCode::InvalidLimit, e.to_string()))?;
    let cooling_off = chrono::Duration::seconds(state.settings.players.limit_cooling_off_s);
    let actor = player_actor(player, &headers);
    let limits = engine::change_limits(&state.db, player, &change, cooling_off, &actor)
        .await?
        .ok_or_else(no_such_player)?;
    Ok(Json(LimitsView::of(&limits)))
}

/// A field that is present, as `Some` — its value `null` included, as
/// `Some(None)`; an absent field is `None` by `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Amount>>, D::Error> {
    Option::<Amount>::deserialize(deserializer).map(Some)
}
