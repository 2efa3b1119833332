//! Players, by Telegram user id.

use chrono::{DateTime, Utc};
use domain::money::{Amount, Currency};
use domain::play::LimitSchedule;
use domain::telegram::TelegramUser;
use sqlx::PgConnection;

use super::spins::{self, PlayerState};

/// One transfer that moved a wallet, signed as the wallet saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletEntry {
    pub id: i64,
    pub kind: String,
    pub amount: Amount,
    pub reference: String,
    pub at: DateTime<Utc>,
}

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
/// Answers whether the player was created by this call.
pub async fn upsert(conn: &mut PgConnection, user: &TelegramUser) -> Result<(Player, bool), sqlx::Error> {
    // Limits of the table, so a long name is cut rather than refused.
    let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
    let first_name = match cut(&user.first_name, 256) {
        name if name.is_empty() => "–".to_owned(),
        name => name,
    };
    let row: UpsertRow = sqlx::query_as(
        "insert into players (telegram_user_id, first_name, last_name, username, language_code, is_premium)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (telegram_user_id) do update
            set first_name = excluded.first_name, last_name = excluded.last_name, username = excluded.username,
                language_code = excluded.language_code, is_premium = excluded.is_premium,
                last_sign_in_at = now()
         returning id, telegram_user_id, first_name, last_name, username, language_code, is_premium,
                   (xmax = 0) as created",
    )
    .bind(user.id)
    .bind(first_name)
    .bind(user.last_name.as_deref().map(|n| cut(n, 256)))
    .bind(user.username.as_deref().map(|n| cut(n, 64)))
    .bind(user.language_code.as_deref().map(|n| cut(n, 16)))
    .bind(user.is_premium)
    .fetch_one(conn)
    .await?;
    Ok((row.player, row.created))
}

/// The player with this id.
pub async fn get(db: &sqlx::PgPool, id: i64) -> Result<Option<Player>, sqlx::Error> {
    sqlx::query_as(
        "select id, telegram_user_id, first_name, last_name, username, language_code, is_premium
           from players where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

#[derive(sqlx::FromRow)]
struct UpsertRow {
    #[sqlx(flatten)]
    player: Player,
    created: bool,
}

/// A page of the transfers that moved a wallet, newest first: `before` an
/// entry id when given, at most `limit`.
pub async fn wallet_history(
    conn: &mut PgConnection,
    owner: &str,
    currency: Currency,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<WalletEntry>, sqlx::Error> {
    let rows: Vec<(i64, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
        "with w as (select id from ledger_accounts where kind = 'player_wallet' and owner = $1 and currency = $2)
         select id, kind, amount, reference, created_at from (
             (select t.id, t.kind, -t.amount_micros as amount, t.reference, t.created_at
                from ledger_transfers t, w
               where t.debit_account_id = w.id and ($3::bigint is null or t.id < $3)
               order by t.id desc limit $4)
             union all
             (select t.id, t.kind, t.amount_micros, t.reference, t.created_at
                from ledger_transfers t, w
               where t.credit_account_id = w.id and ($3::bigint is null or t.id < $3)
               order by t.id desc limit $4)
         ) both_sides
         order by id desc limit $4",
    )
    .bind(owner)
    .bind(currency.as_str())
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, amount, reference, at)| WalletEntry {
            id,
            kind,
            amount: Amount::from_micros(amount),
            reference,
            at,
        })
        .collect())
}

/// Locks the player and makes pending limits whose cooling-off is over at
/// `now` the limits in force; answers the player's state.
pub async fn settle_limits(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<PlayerState>, sqlx::Error> {
    let Some(state) = spins::lock_player(conn, id).await? else {
        return Ok(None);
    };
    match state.limits().settled(now) {
        Some(settled) => store_limits(conn, id, &settled).await.map(Some),
        None => Ok(Some(state)),
    }
}

/// Writes a player's limits; the caller holds the player's lock. Answers the
/// player as stored.
pub async fn store_limits(
    conn: &mut PgConnection,
    id: i64,
    limits: &LimitSchedule,
) -> Result<PlayerState, sqlx::Error> {
    let pending = limits.pending.map(|p| p.limits);
    sqlx::query_as(&format!(
        "update players set daily_loss_limit_micros = $2, daily_deposit_limit_micros = $3,
                pending_daily_loss_limit_micros = $4, pending_daily_deposit_limit_micros = $5,
                pending_limits_from = $6, self_excluded_until = $7
          where id = $1
         returning {}",
        spins::PLAYER_COLUMNS
    ))
    .bind(id)
    .bind(limits.current.daily_loss_micros)
    .bind(limits.current.daily_deposit_micros)
    .bind(pending.and_then(|p| p.daily_loss_micros))
    .bind(pending.and_then(|p| p.daily_deposit_micros))
    .bind(limits.pending.map(|p| p.from))
    .bind(limits.self_excluded_until)
    .fetch_one(conn)
    .await
}

/// The transfer posted under `reference`, if any: its id and amount.
pub async fn transfer_by_reference(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<(i64, Amount)>, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select id, amount_micros from ledger_transfers where reference = $1 order by id limit 1",
    )
    .bind(reference)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id, amount)| (id, Amount::from_micros(amount))))
}
