//! Players, by Telegram user id.

use app::api::WalletEntry;
use chrono::{DateTime, Utc};
use domain::money::{Amount, Currency};
use domain::telegram::TelegramUser;
use sqlx::PgConnection;

use super::ledger::{self, AccountKind, Accounts, Transfer, TransferKind};
use super::spins::{self, PlayerState};

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

#[derive(sqlx::FromRow)]
struct UpsertRow {
    #[sqlx(flatten)]
    player: Player,
    created: bool,
}

/// Creates the player's first provably-fair seed and, when `demo_credit` is
/// positive, credits their new wallet from the house (a `demo_credit`
/// transfer referenced `player:<id>`). Called once, when the player is created.
pub async fn welcome(
    conn: &mut PgConnection,
    accounts: &Accounts,
    player: &Player,
    currency: Currency,
    demo_credit: Amount,
) -> Result<(), sqlx::Error> {
    crate::engine::new_seed(conn, player.id, None).await?;
    if demo_credit.micros() > 0 {
        let house = accounts.id_in(conn, AccountKind::House, "", currency).await?;
        let wallet =
            accounts.id_in(conn, AccountKind::PlayerWallet, &player.id.to_string(), currency).await?;
        let credit = Transfer {
            debit: house,
            credit: wallet,
            amount: demo_credit,
            kind: TransferKind::DemoCredit,
            reference: format!("player:{}", player.id),
        };
        ledger::post(conn, &[credit]).await?;
    }
    Ok(())
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
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
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
    let Some(mut state) = spins::lock_player(conn, id).await? else {
        return Ok(None);
    };
    if state.pending_limits_from.is_some_and(|from| from <= now) {
        sqlx::query(
            "update players set daily_loss_limit_micros = pending_daily_loss_limit_micros,
                    daily_deposit_limit_micros = pending_daily_deposit_limit_micros,
                    pending_daily_loss_limit_micros = null, pending_daily_deposit_limit_micros = null,
                    pending_limits_from = null
              where id = $1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        state.daily_loss_limit_micros = state.pending_daily_loss_limit_micros.take();
        state.daily_deposit_limit_micros = state.pending_daily_deposit_limit_micros.take();
        state.pending_limits_from = None;
    }
    Ok(Some(state))
}

/// Applies a player's change of limits (`Some(None)` removes a limit). A
/// tighter limit applies at once; a looser one, or a removal, waits
/// `cooling_off_s` (and restarts the wait of any change still pending).
/// Self-exclusion only ever lengthens. `state` is the player as
/// [`settle_limits`] locked and read it; answers the player as changed.
pub async fn change_limits(
    conn: &mut PgConnection,
    state: &PlayerState,
    now: DateTime<Utc>,
    loss: Option<Option<i64>>,
    deposit: Option<Option<i64>>,
    self_exclude_days: Option<i64>,
    cooling_off_s: i64,
) -> Result<PlayerState, sqlx::Error> {
    let mut current = [state.daily_loss_limit_micros, state.daily_deposit_limit_micros];
    let mut pending = state.pending_limits_from.map(|from| {
        ([state.pending_daily_loss_limit_micros, state.pending_daily_deposit_limit_micros], from)
    });
    for (at, change) in [loss, deposit].into_iter().enumerate() {
        let Some(wanted) = change else { continue };
        let tighter = match (current[at], wanted) {
            (None, Some(_)) => true,
            (Some(now), Some(wanted)) => wanted <= now,
            (_, None) => current[at].is_none(),
        };
        if tighter {
            current[at] = wanted;
            // A pending value looser than the new one would undo it later.
            if let Some((values, _)) = pending.as_mut() {
                if values[at].is_none_or(|p| wanted.is_some_and(|w| p > w)) {
                    values[at] = wanted;
                }
            }
        } else {
            let (values, from) = pending.get_or_insert((current, now));
            values[at] = wanted;
            *from = now + chrono::Duration::seconds(cooling_off_s);
        }
    }
    if pending.is_some_and(|(values, _)| values == current) {
        pending = None;
    }
    let excluded_until = match self_exclude_days {
        Some(days) => {
            let wanted = now + chrono::Duration::days(days);
            Some(state.self_excluded_until.filter(|until| *until > wanted).unwrap_or(wanted))
        }
        None => state.self_excluded_until,
    };
    sqlx::query_as(&format!(
        "update players set daily_loss_limit_micros = $2, daily_deposit_limit_micros = $3,
                pending_daily_loss_limit_micros = $4, pending_daily_deposit_limit_micros = $5,
                pending_limits_from = $6, self_excluded_until = $7
          where id = $1
         returning {}",
        spins::PLAYER_COLUMNS
    ))
    .bind(state.id)
    .bind(current[0])
    .bind(current[1])
    .bind(pending.and_then(|(values, _)| values[0]))
    .bind(pending.and_then(|(values, _)| values[1]))
    .bind(pending.map(|(_, from)| from))
    .bind(excluded_until)
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
