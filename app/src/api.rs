//! JSON shapes of the public API under `/api`, and the stable error codes every
//! API answers with. Field names are camelCase on the wire; amounts are decimal
//! strings (see [`domain::money::Amount`]).

use domain::jackpot::{Progress, Tier};
use domain::money::{Amount, Currency};
use serde::{Deserialize, Serialize};

/// One jackpot as the lobby shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JackpotSummary {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub currency: Currency,
    /// The pool: the current value of the running cycle.
    pub value: Amount,
    pub seed: Amount,
    pub max_value: Amount,
    /// `value / max_value` in basis points.
    pub progress_bp: Progress,
    pub cycle: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JackpotList {
    pub jackpots: Vec<JackpotSummary>,
}

/// `GET /api/wallet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub currency: Currency,
    pub balance: Amount,
}

/// One transfer that moved a player's wallet, as `GET /api/wallet/history`
/// lists it: `amount` is signed (negative when the wallet paid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletEntry {
    pub id: i64,
    /// `bet`, `win`, `award` (a jackpot), `award_rollback`, `deposit`, `demo_credit`.
    pub kind: String,
    pub amount: Amount,
    /// What caused it: `spin:<id>`, `award:<id>`, `player:<id>` …
    pub reference: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// A page of the history, newest first. `nextBefore` is the `before` of the
/// next (older) page; absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletHistory {
    pub currency: Currency,
    pub entries: Vec<WalletEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// What a spin did: the answer to `POST /api/spin`, stored with the spin and
/// given again for a retry with the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinReceipt {
    pub spin_id: i64,
    pub bet_amount: Amount,
    /// The paytable's win (line wins), without jackpots.
    pub win: Amount,
    /// Jackpot awards this spin triggered.
    pub jackpot_win: Amount,
    /// `win + jackpotWin - bet`: what the spin changed in the wallet.
    pub net: Amount,
    /// True only when the spin returned more than the bet: a return at or
    /// below the bet is never a win, and the UI does not celebrate it.
    pub is_win: bool,
    /// Symbol ids, `reels[reel][row]`, top row first.
    pub reels: Vec<Vec<String>>,
    pub line_wins: Vec<LineWinView>,
    pub balance: Amount,
    pub currency: Currency,
    pub contributions: Vec<SpinContribution>,
    pub jackpot_awards: Vec<SpinAward>,
    pub fairness: SpinFairness,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineWinView {
    /// The payline's index, from 0.
    pub line: usize,
    pub symbol: String,
    pub count: usize,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinContribution {
    pub jackpot_id: String,
    pub amount: Amount,
    /// The pool just after this contribution.
    pub value: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinAward {
    pub award_id: i64,
    pub jackpot_id: String,
    pub cycle: i64,
    pub amount: Amount,
}

/// The provably-fair inputs of a spin: with the server seed once revealed,
/// `stops = domain::seeds::stops(serverSeed, clientSeed, nonce, reel lengths)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinFairness {
    pub seed_id: i64,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: i64,
    pub stops: Vec<usize>,
}

/// The body of every error answer: `{"code": "...", "message": "..."}`, plus
/// `details` where a code documents them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// Stable, machine-readable error codes. Clients branch on these, never on the
/// message; a code, once published, keeps its meaning. The server maps each to
/// one HTTP status in a single table (`server::http::error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The path names nothing.
    NotFound,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// The body is not syntactically valid JSON.
    MalformedJson,
    /// The JSON is well-formed but does not fit the expected shape (missing,
    /// unknown or mistyped fields).
    InvalidBody,
    /// The body must be `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// `/metrics` needs its bearer token.
    MetricsTokenRequired,
    /// The service key may not contribute under this game.
    GameNotAllowed,
    /// The service key may not contribute to or award this jackpot.
    JackpotNotAllowed,
    /// The service key's bets of the day would pass its daily volume.
    VolumeLimitReached,
    /// The request's headers together are larger than the configured limit.
    HeadersTooLarge,
    /// A query-string parameter is missing, unknown or malformed.
    InvalidQuery,
    /// The request took longer than the configured time-out.
    RequestTimeout,
    /// A dependency (the database) is unavailable; retry after `Retry-After`.
    ServiceUnavailable,
    /// Something failed on our side; the cause is in the server's log.
    Internal,
    /// No jackpot has this id.
    JackpotNotFound,
    /// The jackpot is paused: it takes no contributions and pays no awards.
    JackpotPaused,
    /// A write needs an `Idempotency-Key` header.
    MissingIdempotencyKey,
    /// The `Idempotency-Key` is empty, longer than 128 characters or not
    /// printable ASCII.
    InvalidIdempotencyKey,
    /// The idempotency key was already used for a different request.
    IdempotencyKeyReused,
    /// The bet's currency is not the jackpot's.
    CurrencyMismatch,
    /// The game does not feed this jackpot.
    GameNotEligible,
    /// The bet is zero or negative.
    BetNotPositive,
    /// The bet is below the jackpot's minimum eligible bet.
    BelowMinimumBet,
    /// The bet is above the largest bet the service accepts.
    BetTooLarge,
    /// The cycle was already awarded; `details.award` is the award that won it.
    CycleAlreadyAwarded,
    /// The requested cycle is not the jackpot's open cycle (nor an awarded one).
    CycleNotOpen,
    /// The jackpot is must-drop: the server awards it, a provider cannot.
    AwardNotAllowed,
    /// A configuration change is invalid (rules that do not hold together, a
    /// value out of range) or changes nothing.
    InvalidJackpotConfig,
    /// A signature header of the service API is missing or malformed.
    MissingSignature,
    /// The request's timestamp is more than 300 s from the server's clock.
    StaleTimestamp,
    /// The request nonce was used before within the timestamp window.
    ReplayedNonce,
    /// The signature does not match the request.
    BadSignature,
    /// The key's role does not allow this request.
    Forbidden,
    /// No award has this id.
    AwardNotFound,
    /// The award was already rolled back.
    AwardAlreadyRolledBack,
    /// The wallet does not hold the amount: a spin's bet, or (a rollback) the
    /// awarded amount.
    InsufficientFunds,
    /// Telegram `initData` is not a well-formed query string, or lacks a
    /// valid `auth_date` or `user`.
    InitDataMalformed,
    /// Telegram `initData` has no `hash`, or one that is not 64 hex digits.
    InitDataBadHash,
    /// Telegram `initData`'s hash does not match its fields.
    InitDataBadSignature,
    /// Telegram `initData`'s `auth_date` is older than the server accepts.
    InitDataStale,
    /// This `initData` already signed a player in: each launch signs in once.
    InitDataUsed,
    /// The refresh token is malformed, not ours, spent, expired or signed out:
    /// sign in again from Telegram.
    RefreshTokenInvalid,
    /// This server has no Telegram bot token configured, so it cannot sign players in.
    TelegramNotConfigured,
    /// A player endpoint needs `Authorization: Bearer <token>` from `POST /api/auth/telegram`.
    TokenMissing,
    /// The bearer token is malformed, not ours, or expired: sign in again.
    TokenInvalid,
    /// The bet is not a whole multiple of the bet step (`details.betStep`).
    BetStepMismatch,
    /// Too many requests from this address or player in the rate window;
    /// `details.retryAfterMs` says when to come back.
    RateLimited,
    /// The player spun less than the minimum interval ago; `details.retryAfterMs` says when the next spin is allowed.
    SpinTooSoon,
    /// The player's previous spins are still being played (`players.spins_in_flight_max`).
    SpinInProgress,
    /// The player has excluded themselves until `details.until`.
    SelfExcluded,
    /// The spin could lose more than the player's daily loss limit allows.
    LossLimitReached,
    /// The deposit would pass the player's daily deposit limit.
    DepositLimitReached,
    /// A limit is not positive, or asks to shorten a running self-exclusion.
    InvalidLimit,
    /// A client seed is 1 to 64 letters, digits, `-` or `_`.
    InvalidClientSeed,
    /// No spin of this player has this id.
    SpinNotFound,
    /// The spin's server seed is still in use; rotate the seed to reveal it.
    SeedNotRevealed,
    /// Demo deposits are off on this server.
    DemoModeOff,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MetricsTokenRequired => "metrics_token_required",
            ErrorCode::GameNotAllowed => "game_not_allowed",
            ErrorCode::JackpotNotAllowed => "jackpot_not_allowed",
            ErrorCode::VolumeLimitReached => "volume_limit_reached",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::JackpotNotFound => "jackpot_not_found",
            ErrorCode::JackpotPaused => "jackpot_paused",
            ErrorCode::MissingIdempotencyKey => "missing_idempotency_key",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::CurrencyMismatch => "currency_mismatch",
            ErrorCode::GameNotEligible => "game_not_eligible",
            ErrorCode::BetNotPositive => "bet_not_positive",
            ErrorCode::BelowMinimumBet => "below_minimum_bet",
            ErrorCode::BetTooLarge => "bet_too_large",
            ErrorCode::CycleAlreadyAwarded => "cycle_already_awarded",
            ErrorCode::CycleNotOpen => "cycle_not_open",
            ErrorCode::AwardNotAllowed => "award_not_allowed",
            ErrorCode::InvalidJackpotConfig => "invalid_jackpot_config",
            ErrorCode::MissingSignature => "missing_signature",
            ErrorCode::StaleTimestamp => "stale_timestamp",
            ErrorCode::ReplayedNonce => "replayed_nonce",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AwardNotFound => "award_not_found",
            ErrorCode::AwardAlreadyRolledBack => "award_already_rolled_back",
            ErrorCode::InsufficientFunds => "insufficient_funds",
            ErrorCode::InitDataMalformed => "init_data_malformed",
            ErrorCode::InitDataBadHash => "init_data_bad_hash",
            ErrorCode::InitDataBadSignature => "init_data_bad_signature",
            ErrorCode::InitDataStale => "init_data_stale",
            ErrorCode::InitDataUsed => "init_data_used",
            ErrorCode::RefreshTokenInvalid => "refresh_token_invalid",
            ErrorCode::TelegramNotConfigured => "telegram_not_configured",
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::BetStepMismatch => "bet_step_mismatch",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SpinTooSoon => "spin_too_soon",
            ErrorCode::SpinInProgress => "spin_in_progress",
            ErrorCode::SelfExcluded => "self_excluded",
            ErrorCode::LossLimitReached => "loss_limit_reached",
            ErrorCode::DepositLimitReached => "deposit_limit_reached",
            ErrorCode::InvalidLimit => "invalid_limit",
            ErrorCode::InvalidClientSeed => "invalid_client_seed",
            ErrorCode::SpinNotFound => "spin_not_found",
            ErrorCode::SeedNotRevealed => "seed_not_revealed",
            ErrorCode::DemoModeOff => "demo_mode_off",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_their_stable_names() {
        let all = [
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::MalformedJson,
            ErrorCode::InvalidBody,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
            ErrorCode::HeadersTooLarge,
            ErrorCode::MetricsTokenRequired,
            ErrorCode::GameNotAllowed,
            ErrorCode::JackpotNotAllowed,
            ErrorCode::VolumeLimitReached,
            ErrorCode::InvalidQuery,
            ErrorCode::RequestTimeout,
            ErrorCode::ServiceUnavailable,
            ErrorCode::Internal,
            ErrorCode::JackpotNotFound,
            ErrorCode::JackpotPaused,
            ErrorCode::MissingIdempotencyKey,
            ErrorCode::InvalidIdempotencyKey,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::CurrencyMismatch,
            ErrorCode::GameNotEligible,
            ErrorCode::BetNotPositive,
            ErrorCode::BelowMinimumBet,
            ErrorCode::BetTooLarge,
            ErrorCode::CycleAlreadyAwarded,
            ErrorCode::CycleNotOpen,
            ErrorCode::AwardNotAllowed,
            ErrorCode::InvalidJackpotConfig,
            ErrorCode::MissingSignature,
            ErrorCode::StaleTimestamp,
            ErrorCode::ReplayedNonce,
            ErrorCode::BadSignature,
            ErrorCode::Forbidden,
            ErrorCode::AwardNotFound,
            ErrorCode::AwardAlreadyRolledBack,
            ErrorCode::InsufficientFunds,
            ErrorCode::InitDataMalformed,
            ErrorCode::InitDataBadHash,
            ErrorCode::InitDataBadSignature,
            ErrorCode::InitDataStale,
            ErrorCode::InitDataUsed,
            ErrorCode::RefreshTokenInvalid,
            ErrorCode::TelegramNotConfigured,
            ErrorCode::TokenMissing,
            ErrorCode::TokenInvalid,
            ErrorCode::BetStepMismatch,
            ErrorCode::RateLimited,
            ErrorCode::SpinTooSoon,
            ErrorCode::SpinInProgress,
            ErrorCode::SelfExcluded,
            ErrorCode::LossLimitReached,
            ErrorCode::DepositLimitReached,
            ErrorCode::InvalidLimit,
            ErrorCode::InvalidClientSeed,
            ErrorCode::SpinNotFound,
            ErrorCode::SeedNotRevealed,
            ErrorCode::DemoModeOff,
        ];
        for code in all {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn a_jackpot_summary_uses_camel_case_and_string_amounts() {
        let summary = JackpotSummary {
            id: "mega".into(),
            name: "Mega".into(),
            tier: Tier::Mega,
            currency: "EUR".parse().unwrap(),
            value: Amount::from_micros(12_500),
            seed: Amount::from_micros(0),
            max_value: Amount::from_micros(1_000_000),
            progress_bp: Progress::of(Amount::from_micros(12_500), Amount::from_micros(1_000_000)),
            cycle: 1,
        };
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["value"], "0.0125");
        assert_eq!(json["maxValue"], "1.00");
        assert_eq!(json["progressBp"], 125);
        assert_eq!(json["tier"], "mega");
    }
}
