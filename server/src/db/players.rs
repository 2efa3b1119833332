//! Players, by Telegram user id.

use domain::telegram::TelegramUser;
use sqlx::PgConnection;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Player {
    pub id: i64,
    pub telegram_user_id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
    pub is_premium: bool,
}

/// Creates the player, or brings the profile up to date: Telegram is the
/// source of a player's name, username, language and premium flag.
pub async fn upsert(conn: &mut PgConnection, user: &TelegramUser) -> Result<Player, sqlx::Error> {
    // Limits of the table, so a long name is cut rather than refused.
    let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
    let first_name = match cut(&user.first_name, 256) {
        name if name.is_empty() => "–".to_owned(),
        name => name,
    };
    sqlx::query_as(
        "insert into players (telegram_user_id, first_name, last_name, username, language_code, is_premium)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (telegram_user_id) do update
            set first_name = excluded.first_name, last_name = excluded.last_name, username = excluded.username,
                language_code = excluded.language_code, is_premium = excluded.is_premium,
                last_sign_in_at = now()
         returning id, telegram_user_id, first_name, last_name, username, language_code, is_premium",
    )
    .bind(user.id)
    .bind(first_name)
    .bind(user.last_name.as_deref().map(|n| cut(n, 256)))
    .bind(user.username.as_deref().map(|n| cut(n, 64)))
    .bind(user.language_code.as_deref().map(|n| cut(n, 16)))
    .bind(user.is_premium)
    .fetch_one(conn)
    .await
}
