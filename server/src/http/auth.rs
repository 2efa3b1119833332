//! Players sign in with the Mini App's Telegram `initData`
//! (`POST /api/auth/telegram`) and get a short-lived access token (a JWT,
//! HS256), a refresh token and their profile. The player is created, or
//! updated, from the verified Telegram user.
//!
//! Each launch's `initData` signs in once, within
//! `telegram.init_data_max_age_s` of Telegram stamping it; after that the
//! session renews by refresh token (`POST /api/auth/refresh`), each token good
//! for one renewal. A spent refresh token presented again ends the session —
//! one of its two holders is a thief — and `POST /api/auth/sign-out` ends it
//! at the player's word.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::money::Amount;
use domain::session::{RefreshKey, RefreshToken};
use domain::telegram::{self, InitDataError};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::ApiJson;
use crate::config::AuthSettings;
use crate::db::players::{self, Player};
use crate::db::sessions::{self, Revocation, Session};
use crate::state::AppState;

/// Who issues the tokens (their `iss`).
const ISSUER: &str = "cekpot";

/// The shortest signing secret accepted.
const SECRET_LENGTH_MIN: usize = 32;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/telegram", post(sign_in))
        .route("/auth/refresh", post(refresh))
        .route("/auth/sign-out", post(sign_out))
}

/// Issues and checks players' session tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    refresh: RefreshKey,
    ttl_seconds: i64,
    refresh_ttl_seconds: i64,
    session_max_age_seconds: i64,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The player's id.
    pub sub: String,
    /// The player's Telegram user id.
    pub tg: i64,
    /// The session the token was issued in.
    pub sid: i64,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

impl Tokens {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Tokens> {
        let secret = match &settings.jwt_secret {
            Some(secret) => {
                let secret = secret.expose_secret().as_bytes().to_vec();
                anyhow::ensure!(
                    secret.len() >= SECRET_LENGTH_MIN,
                    "auth.jwt_secret must be at least {SECRET_LENGTH_MIN} bytes"
                );
                secret
            }
            None => {
                tracing::warn!(
                    "no auth.jwt_secret: players' tokens are signed with a key of this process only"
                );
                let mut secret = vec![0u8; SECRET_LENGTH_MIN];
                getrandom::fill(&mut secret).expect("the operating system's random source is available");
                secret
            }
        };
        settings.check().map_err(anyhow::Error::msg)?;
        Ok(Tokens {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            refresh: RefreshKey::derive(&secret),
            ttl_seconds: settings.token_ttl_s,
            refresh_ttl_seconds: settings.refresh_ttl_s,
            session_max_age_seconds: settings.session_max_age_s,
        })
    }

    /// An access token for `player` in `session`, and when it expires.
    pub fn issue(&self, player: &Player, session: i64, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires = now + chrono::Duration::seconds(self.ttl_seconds);
        let claims = Claims {
            sub: player.id.to_string(),
            tg: player.telegram_user_id,
            sid: session,
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .expect("HS256 signs any claims that serialise");
        (token, expires)
    }

    /// The claims of a token this server issued and that has not expired.
    pub fn check(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignInBody {
    /// `Telegram.WebApp.initData`, exactly as the Mini App received it.
    init_data: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
    /// Renews the session once (`POST /api/auth/refresh`).
    refresh_token: String,
    /// When the session ends unless renewed first.
    refresh_expires_at: DateTime<Utc>,
    player: PlayerView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlayerView {
    id: i64,
    telegram_user_id: i64,
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
    language_code: Option<String>,
    is_premium: bool,
}

impl From<Player> for PlayerView {
    fn from(player: Player) -> PlayerView {
        PlayerView {
            id: player.id,
            telegram_user_id: player.telegram_user_id,
            first_name: player.first_name,
            last_name: player.last_name,
            username: player.username,
            language_code: player.language_code,
            is_premium: player.is_premium,
        }
    }
}

impl Tokens {
    /// What the player gets for a session: an access token and the
    /// session's current refresh token.
    fn signed_in(&self, player: Player, session: &Session) -> SignedIn {
        let (token, expires_at) = self.issue(&player, session.id, Utc::now());
        let refresh = RefreshToken { session: session.id, generation: session.generation };
        SignedIn {
            token,
            token_type: "Bearer",
            expires_at,
            refresh_token: self.refresh.sign(refresh),
            refresh_expires_at: session.idle_expires_at,
            player: player.into(),
        }
    }

    /// The session a refresh token names, if this server signed it.
    fn read_refresh(&self, text: &str) -> Result<RefreshToken, ApiError> {
        self.refresh
            .read(text)
            .ok_or_else(|| refresh_refused("the refresh token is not one this server issued"))
    }
}

async fn sign_in(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<SignedIn>, ApiError> {
    let telegram = &state.settings.telegram;
    let Some(bot_token) = &telegram.bot_token else {
        return Err(ApiError::new(
            ErrorCode::TelegramNotConfigured,
            "this server has no Telegram bot token (telegram.bot_token), so it cannot sign players in",
        ));
    };
    let verified = telegram::verify(
        &body.init_data,
        bot_token.expose_secret(),
        Utc::now().timestamp(),
        Some(telegram.init_data_max_age_s),
    )
    .map_err(refusal)?;
    let auth_date = DateTime::from_timestamp(verified.auth_date, 0)
        .ok_or_else(|| refusal(InitDataError::MissingAuthDate))?;
    let tokens = &state.tokens;
    let mut tx = state.db.begin().await?;
    let (player, created) = players::upsert(&mut tx, &verified.user).await?;
    let session =
        sessions::open(&mut tx, player.id, tokens.refresh_ttl_seconds, tokens.session_max_age_seconds)
            .await?;
    if !sessions::record_sign_in(&mut tx, &verified.hash, &session, auth_date).await? {
        // Rolled back: the profile update and the session go with it.
        return Err(ApiError::new(
            ErrorCode::InitDataUsed,
            "this launch's initData already signed in; reopen the app from Telegram",
        ));
    }
    if created {
        let demo_credit = Amount::from_micros(state.settings.players.demo_credit_micros);
        let currency = state.spins.game().currency;
        let actor = super::player::player_actor(player.id, &headers);
        crate::engine::welcome(&mut tx, state.engine.accounts(), &player, currency, demo_credit, &actor)
            .await?;
    }
    tx.commit().await?;
    Ok(Json(tokens.signed_in(player, &session)))
}

/// Renews the session a refresh token names: a new access token and the
/// next refresh token. The token's generation must be the session's current
/// one; an earlier generation (a spent token) ends the session.
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<SignedIn>, ApiError> {
    let presented = state.tokens.read_refresh(&body.refresh_token)?;
    let renewed =
        sessions::renew(&state.db, presented.session, presented.generation, state.tokens.refresh_ttl_seconds)
            .await?;
    let Some(session) = renewed else {
        let reused = sessions::revoke(
            &state.db,
            presented.session,
            Some(presented.generation),
            Revocation::RefreshTokenReused,
        )
        .await?;
        if reused {
            tracing::warn!(
                session = presented.session,
                generation = presented.generation,
                "a spent refresh token was presented again: the session is ended"
            );
        }
        return Err(refresh_refused(
            "the session was renewed with this token already, has ended, or expired",
        ));
    };
    let player = players::get(&state.db, session.player_id)
        .await?
        .ok_or_else(|| refresh_refused("the session's player no longer exists"))?;
    Ok(Json(state.tokens.signed_in(player, &session)))
}

/// Ends the session a refresh token names (any of its generations).
async fn sign_out(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    let presented = state.tokens.read_refresh(&body.refresh_token)?;
    sessions::revoke(&state.db, presented.session, None, Revocation::SignedOut).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn refresh_refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::RefreshTokenInvalid, format!("{message}: sign in again from Telegram"))
}

fn refusal(error: InitDataError) -> ApiError {
    let code = match error {
        InitDataError::Malformed(_) | InitDataError::MissingAuthDate | InitDataError::MissingUser => {
            ErrorCode::InitDataMalformed
        }
        InitDataError::MissingHash | InitDataError::BadHashFormat => ErrorCode::InitDataBadHash,
        InitDataError::BadSignature => ErrorCode::InitDataBadSignature,
        InitDataError::Stale { .. } => ErrorCode::InitDataStale,
    };
    ApiError::new(code, error.to_string())
}
