//! The player's API, behind `Authorization: Bearer <token>` from
//! `POST /api/auth/telegram`: the wallet and its history, spins, the
//! provably-fair seeds and their check, and the player's own limits.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::money::Amount;
use domain::seeds;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, ApiQuery};
use super::service::IdempotencyKey;
use crate::db::ledger::AccountKind;
use crate::db::spins::PlayerState;
use crate::db::{players, spins};
use crate::engine::{SpinRefusal, SpinRequest};
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
                "the token is malformed, not ours, or expired: sign in again",
            )
        })?;
        claims
            .sub
            .parse()
            .map(PlayerId)
            .map_err(|_| ApiError::new(ErrorCode::TokenInvalid, "the token names no player"))
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
    let entries: Vec<_> = entries.into_iter().take(limit as usize).collect();
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
struct Deposited {
    transfer_id: i64,
    amount: Amount,
    currency: domain::money::Currency,
    balance: Amount,
    deposited_today: Amount,
}

/// A demo deposit (`players.demo_deposits`): `deposits_clearing` → wallet,
/// within the player's daily deposit limit, refused while self-excluded.
/// Idempotent per player and key: a retry answers the first deposit.
async fn deposit(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<DepositBody>,
) -> Result<Json<Deposited>, ApiError> {
    if !state.settings.players.demo_deposits {
        return Err(ApiError::new(ErrorCode::DemoModeOff, "deposits are not available on this server"));
    }
    let max = Amount::from_micros(state.settings.players.deposit_max_micros);
    if body.amount.micros() <= 0 {
        return Err(ApiError::new(ErrorCode::InvalidBody, "amount must be positive"));
    }
    if body.amount > max {
        return Err(ApiError::new(ErrorCode::InvalidBody, format!("the largest deposit is {max}")));
    }
    let currency = state.spins.game().currency;
    // The accounts, created (once) before the transaction holds a connection.
    let accounts = state.engine.accounts();
    let wallet = accounts.id(AccountKind::PlayerWallet, &player.to_string(), currency).await?;
    let clearing = accounts.id(AccountKind::DepositsClearing, "", currency).await?;
    let mut tx = state.db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let Some(player_state) = players::settle_limits(&mut tx, player, now).await? else {
        return Err(no_such_player());
    };
    let reference = format!("deposit:{player}:{key}");
    let day =
        spins::days(&mut tx, &[player], now.date_naive()).await?.pop().map(|(_, d)| d).unwrap_or_default();
    let done = |transfer_id: i64, amount: Amount, balance: i64, deposited: i64| Deposited {
        transfer_id,
        amount,
        currency,
        balance: Amount::from_micros(balance),
        deposited_today: Amount::from_micros(deposited),
    };
    if let Some((id, amount)) = players::transfer_by_reference(&mut tx, &reference).await? {
        if amount != body.amount {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this key was used for another deposit",
            ));
        }
        let balance = crate::db::ledger::balance(&mut tx, wallet).await?.micros();
        return Ok(Json(done(id, amount, balance, day.deposits_micros)));
    }
    if let Some(until) = player_state.self_excluded_until.filter(|until| *until > now) {
        return Err(ApiError::new(
            ErrorCode::SelfExcluded,
            format!("you have excluded yourself until {until}"),
        )
        .with_details(serde_json::json!({ "until": until })));
    }
    if let Some(limit) = player_state.limits_at(now).daily_deposit_micros {
        if day.deposits_micros + body.amount.micros() > limit {
            return Err(ApiError::new(
                ErrorCode::DepositLimitReached,
                format!("this deposit would pass your daily deposit limit of {}", Amount::from_micros(limit)),
            )
            .with_details(serde_json::json!({
                "limit": Amount::from_micros(limit),
                "depositedToday": Amount::from_micros(day.deposits_micros),
            })));
        }
    }
    let transfer = crate::db::ledger::Transfer {
        debit: clearing,
        credit: wallet,
        amount: body.amount,
        kind: crate::db::ledger::TransferKind::Deposit,
        reference: reference.clone(),
    };
    crate::db::ledger::post(&mut tx, &[transfer]).await?;
    let added = spins::Day { deposits_micros: body.amount.micros(), ..spins::Day::default() };
    let days = spins::DayColumns::of(now.date_naive(), &[(player, added)]);
    spins::add_to_days(&mut tx, &days).await?;
    let (id, _) =
        players::transfer_by_reference(&mut tx, &reference).await?.ok_or(sqlx::Error::RowNotFound)?;
    let balance = crate::db::ledger::balance(&mut tx, wallet).await?.micros();
    tx.commit().await?;
    Ok(Json(done(id, body.amount, balance, day.deposits_micros + body.amount.micros())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct SpinBody {
    bet_amount: Amount,
}

async fn spin(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    headers: HeaderMap,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<SpinBody>,
) -> Result<Json<app::api::SpinReceipt>, ApiError> {
    let game = state.spins.game();
    let bet = body.bet_amount;
    if bet.micros() <= 0 {
        return Err(ApiError::new(ErrorCode::BetNotPositive, "the bet must be positive"));
    }
    if bet < game.min_bet {
        return Err(ApiError::new(
            ErrorCode::BelowMinimumBet,
            format!("the smallest bet is {}", game.min_bet),
        )
        .with_details(serde_json::json!({ "minBet": game.min_bet })));
    }
    if bet > game.max_bet {
        return Err(ApiError::new(ErrorCode::BetTooLarge, format!("the largest bet is {}", game.max_bet))
            .with_details(serde_json::json!({ "maxBet": game.max_bet })));
    }
    if bet.micros() % game.bet_step.micros() != 0 {
        return Err(ApiError::new(
            ErrorCode::BetStepMismatch,
            format!("a bet is a whole multiple of {}", game.bet_step),
        )
        .with_details(serde_json::json!({ "betStep": game.bet_step })));
    }
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request = SpinRequest { player_id: player, bet, idempotency_key: key, request_id };
    match state.spins.spin(request).await? {
        Ok(receipt) => Ok(Json(receipt)),
        Err(refusal) => Err(spin_refusal(refusal)),
    }
}

fn spin_refusal(refusal: SpinRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        SpinRefusal::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, message),
        SpinRefusal::UnknownPlayer => no_such_player(),
        SpinRefusal::SelfExcluded { until } => ApiError::new(ErrorCode::SelfExcluded, message)
            .with_details(serde_json::json!({ "until": until })),
        SpinRefusal::TooSoon { retry_after_ms } => ApiError::new(ErrorCode::SpinTooSoon, message)
            .with_details(serde_json::json!({ "retryAfterMs": retry_after_ms })),
        SpinRefusal::InsufficientFunds { balance } => ApiError::new(ErrorCode::InsufficientFunds, message)
            .with_details(serde_json::json!({ "balance": balance })),
        SpinRefusal::LossLimitReached { limit, lost } => ApiError::new(ErrorCode::LossLimitReached, message)
            .with_details(serde_json::json!({ "limit": limit, "lostToday": lost })),
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
    let mut tx = state.db.begin().await?;
    if spins::lock_player(&mut tx, player).await?.is_none() {
        return Err(no_such_player());
    }
    let seed = match spins::active_seeds(&mut tx, &[player]).await?.pop() {
        Some(seed) => seed,
        None => crate::engine::new_seed(&mut tx, player, None).await?,
    };
    tx.commit().await?;
    Ok(Json(FairnessView {
        seed_id: seed.id,
        server_seed_hash: seed.server_seed_hash,
        client_seed: seed.client_seed,
        next_nonce: seed.next_nonce,
        revealed: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateBody {
    /// The next seed's client seed; absent: a random one.
    #[serde(default)]
    client_seed: Option<String>,
}

/// Reveals the server seed in use and starts a new one. Serialised with the
/// player's spins by the player's row lock, so no spin straddles the change.
async fn rotate(
    State(state): State<AppState>,
    PlayerId(player): PlayerId,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Json<FairnessView>, ApiError> {
    if let Some(seed) = &body.client_seed {
        seeds::check_client_seed(seed)
            .map_err(|e| ApiError::new(ErrorCode::InvalidClientSeed, e.to_string()))?;
    }
    let mut tx = state.db.begin().await?;
    if spins::lock_player(&mut tx, player).await?.is_none() {
        return Err(no_such_player());
    }
    let old = spins::reveal_seed(&mut tx, player).await?;
    let seed = crate::engine::new_seed(&mut tx, player, body.client_seed.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(FairnessView {
        seed_id: seed.id,
        server_seed_hash: seed.server_seed_hash,
        client_seed: seed.client_seed,
        next_nonce: seed.next_nonce,
        revealed: old.map(|old| RevealedSeed {
            seed_id: old.id,
            server_seed: old.server_seed,
            server_seed_hash: old.server_seed_hash,
            client_seed: old.client_seed,
            spins: old.next_nonce,
        }),
    }))
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
    let mut tx = state.db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let settled = players::settle_limits(&mut tx, player, now).await?.ok_or_else(no_such_player)?;
    let view = limits_view(&mut tx, settled, now).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// The player's limits as `state` has them, with today's totals.
async fn limits_view(
    conn: &mut sqlx::PgConnection,
    state: PlayerState,
    now: DateTime<Utc>,
) -> Result<LimitsView, ApiError> {
    let day =
        spins::days(conn, &[state.id], now.date_naive()).await?.pop().map(|(_, d)| d).unwrap_or_default();
    let amount = |m: Option<i64>| m.map(Amount::from_micros);
    Ok(LimitsView {
        daily_loss_limit: amount(state.daily_loss_limit_micros),
        daily_deposit_limit: amount(state.daily_deposit_limit_micros),
        pending: state.pending_limits_from.map(|from| PendingLimits {
            daily_loss_limit: amount(state.pending_daily_loss_limit_micros),
            daily_deposit_limit: amount(state.pending_daily_deposit_limit_micros),
            from,
        }),
        self_excluded_until: state.self_excluded_until.filter(|until| *until > now),
        lost_today: Amount::from_micros(day.lost_micros()),
        deposited_today: Amount::from_micros(day.deposits_micros),
    })
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
    ApiJson(body): ApiJson<LimitsBody>,
) -> Result<Json<LimitsView>, ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidLimit, message.to_owned());
    for change in [&body.daily_loss_limit, &body.daily_deposit_limit] {
        if let Some(Some(amount)) = change {
            if amount.micros() <= 0 {
                return Err(invalid("a limit is a positive amount (send null to remove it)"));
            }
        }
    }
    if let Some(days) = body.self_exclude_days {
        if !(1..=3650).contains(&days) {
            return Err(invalid("selfExcludeDays is 1 to 3650"));
        }
    }
    let mut tx = state.db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let settled = players::settle_limits(&mut tx, player, now).await?.ok_or_else(no_such_player)?;
    let changed = players::change_limits(
        &mut tx,
        &settled,
        now,
        body.daily_loss_limit.map(|l| l.map(Amount::micros)),
        body.daily_deposit_limit.map(|l| l.map(Amount::micros)),
        body.self_exclude_days,
        state.settings.players.limit_cooling_off_s,
    )
    .await?;
    let view = limits_view(&mut tx, changed, now).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// A field that is present, as `Some` — its value `null` included, as
/// `Some(None)`; an absent field is `None` by `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Amount>>, D::Error> {
    Option::<Amount>::deserialize(deserializer).map(Some)
}
