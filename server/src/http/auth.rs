//! Players sign in with the Mini App's Telegram `initData`
//! (`POST /api/auth/telegram`) and get a short-lived session token (a JWT,
//! HS256) and their profile. The player is created, or updated, from the
//! verified Telegram user.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::money::Amount;
use domain::telegram::{self, InitDataError};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::extract::ApiJson;
use crate::config::AuthSettings;
use crate::db::players::{self, Player};
use crate::state::AppState;

/// Who issues the tokens (their `iss`).
const ISSUER: &str = "cekpot";

/// The shortest signing secret accepted.
const SECRET_LENGTH_MIN: usize = 32;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/telegram", post(sign_in))
}

/// Issues and checks players' session tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: i64,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The player's id.
    pub sub: String,
    /// The player's Telegram user id.
    pub tg: i64,
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
        anyhow::ensure!(settings.token_ttl_s > 0, "auth.token_ttl_s must be positive");
        Ok(Tokens {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            ttl_seconds: settings.token_ttl_s,
        })
    }

    /// A token for `player`, and when it expires.
    pub fn issue(&self, player: &Player, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires = now + chrono::Duration::seconds(self.ttl_seconds);
        let claims = Claims {
            sub: player.id.to_string(),
            tg: player.telegram_user_id,
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
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
    let now = Utc::now();
    let verified = telegram::verify(
        &body.init_data,
        bot_token.expose_secret(),
        now.timestamp(),
        Some(telegram.init_data_max_age_s),
    )
    .map_err(refusal)?;
    let mut tx = state.db.begin().await?;
    let (player, created) = players::upsert(&mut tx, &verified.user).await?;
    if created {
        let demo_credit = Amount::from_micros(state.settings.players.demo_credit_micros);
        let currency = state.spins.game().currency;
        let actor = super::player::player_actor(player.id, &headers);
        crate::engine::welcome(&mut tx, state.engine.accounts(), &player, currency, demo_credit, &actor)
            .await?;
    }
    tx.commit().await?;
    let (token, expires_at) = state.tokens.issue(&player, now);
    Ok(Json(SignedIn { token, token_type: "Bearer", expires_at, player: player.into() }))
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
