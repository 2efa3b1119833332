//! Players' sessions and sign-ins (`player_sessions`, `player_sign_ins`).
//! Times are the database's clock, so every instance agrees on expiry.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A session as a refresh token sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub id: i64,
    pub player_id: i64,
    pub generation: i64,
    pub idle_expires_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a session ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    SignedOut,
    RefreshTokenReused,
}

impl Revocation {
    fn as_str(self) -> &'static str {
        match self {
            Revocation::SignedOut => "signed_out",
            Revocation::RefreshTokenReused => "refresh_token_reused",
        }
    }
}

/// Opens a session for the player, idle after `idle_s` and over after `max_age_s`.
pub async fn open(
    conn: &mut PgConnection,
    player_id: i64,
    idle_s: i64,
    max_age_s: i64,
) -> Result<Session, sqlx::Error> {
    sqlx::query_as(
        "insert into player_sessions (player_id, idle_expires_at, expires_at)
         values ($1, now() + make_interval(secs => least($2, $3)), now() + make_interval(secs => $3))
         returning id, player_id, generation, idle_expires_at, expires_at",
    )
    .bind(player_id)
    .bind(idle_s as f64)
    .bind(max_age_s as f64)
    .fetch_one(conn)
    .await
}

/// Records a sign-in by its launch's `initData` hash; `false` when that launch
/// already signed in (the caller rolls back).
pub async fn record_sign_in(
    conn: &mut PgConnection,
    init_data_hash: &[u8],
    session: &Session,
    auth_date: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let recorded = sqlx::query(
        "insert into player_sign_ins (init_data_hash, player_id, session_id, auth_date)
         values ($1, $2, $3, $4)
         on conflict (init_data_hash) do nothing",
    )
    .bind(init_data_hash)
    .bind(session.player_id)
    .bind(session.id)
    .bind(auth_date)
    .execute(conn)
    .await?;
    Ok(recorded.rows_affected() == 1)
}

/// Moves the session from `generation` to the next, if it is live and at that
/// generation, and pushes its idle expiry out by `idle_s` (never past its end).
pub async fn renew(
    db: &PgPool,
    id: i64,
    generation: i64,
    idle_s: i64,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "update player_sessions
            set generation = generation + 1, refreshed_at = now(),
                idle_expires_at = least(now() + make_interval(secs => $3), expires_at)
          where id = $1 and generation = $2 and revoked_at is null
            and idle_expires_at > now() and expires_at > now()
          returning id, player_id, generation, idle_expires_at, expires_at",
    )
    .bind(id)
    .bind(generation)
    .bind(idle_s as f64)
    .fetch_optional(db)
    .await
}

/// Ends the session if it is still open — and, with `moved_past`, only if it
/// was renewed beyond that generation (a spent token presented again).
/// Answers whether it ended it.
pub async fn revoke(
    db: &PgPool,
    id: i64,
    moved_past: Option<i64>,
    reason: Revocation,
) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query(
        "update player_sessions set revoked_at = now(), revoked_reason = $3
          where id = $1 and revoked_at is null and ($2::bigint is null or generation > $2)",
    )
    .bind(id)
    .bind(moved_past)
    .bind(reason.as_str())
    .execute(db)
    .await?;
    Ok(revoked.rows_affected() == 1)
}
