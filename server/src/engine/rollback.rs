//! Award rollback (`POST /admin/awards/{id}/rollback`): never an edit or a
//! delete. The awarded amount moves back from the winner's wallet to the
//! jackpot's reserve (it funds future seeds; the running cycle's pool is left
//! as its contributions made it), the award is marked rolled back, and who did
//! it and why is recorded — one transaction under the award's row lock, so
//! rolling back twice is refused.

use domain::money::{Amount, Currency};
use sqlx::PgConnection;

use crate::audit::{self, Action, Actor, Entry};
use crate::db::awards::{self, RollbackRecord};
use crate::db::jackpots;
use crate::db::ledger::{self, AccountKind, Accounts, Transfer, TransferKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error("no award with this id")]
    AwardNotFound,
    #[error("the award was already rolled back")]
    AlreadyRolledBack,
    #[error("the winner's wallet holds {balance}, less than the {awarded} to take back")]
    InsufficientFunds { balance: Amount, awarded: Amount },
}

pub async fn rollback(
    conn: &mut PgConnection,
    accounts: &Accounts,
    award_id: i64,
    actor: &Actor,
    reason: &str,
) -> Result<Result<RollbackRecord, RollbackError>, sqlx::Error> {
    let Some(award) = awards::lock(conn, award_id).await? else {
        return Ok(Err(RollbackError::AwardNotFound));
    };
    if award.status == "rolled_back" {
        return Ok(Err(RollbackError::AlreadyRolledBack));
    }
    let currency: Currency = match jackpots::currency_of(&mut *conn, &award.jackpot_id).await? {
        Some(currency) => currency,
        None => return Ok(Err(RollbackError::AwardNotFound)),
    };
    // The account the award paid, whoever's namespace it is in.
    let wallet = award.winner_account_id;
    let reserve = accounts.id_in(conn, AccountKind::JackpotReserve, &award.jackpot_id, currency).await?;
    let awarded = Amount::from_micros(award.awarded_amount_micros);
    // Locked, so the audit record's before and after are the wallet's own
    // (the wallet's check constraint is what guarantees it never goes below 0).
    let balance = ledger::lock_balance(conn, wallet).await?;
    if balance < awarded {
        return Ok(Err(RollbackError::InsufficientFunds { balance, awarded }));
    }
    let transfer = Transfer {
        debit: wallet,
        credit: reserve,
        amount: awarded,
        kind: TransferKind::AwardRollback,
        reference: format!("rollback:{award_id}"),
    };
    if let Err(error) = ledger::post(conn, std::slice::from_ref(&transfer)).await {
        // The wallet was spent between the read and the posting.
        let constraint = error.as_database_error().and_then(|e| e.constraint());
        if constraint == Some("ledger_accounts_wallet_not_negative") {
            return Ok(Err(RollbackError::InsufficientFunds { balance, awarded }));
        }
        return Err(error);
    }
    let record = awards::record_rollback(conn, &award, &actor.key_id, reason).await?;
    let entry = Entry {
        actor: actor.clone(),
        action: Action::AwardRollback,
        jackpot_id: Some(award.jackpot_id.clone()),
        before_micros: Some(balance.micros()),
        after_micros: Some(balance.micros() - awarded.micros()),
        detail: serde_json::json!({
            "awardId": award_id,
            "cycle": award.cycle_number,
            "playerId": award.player_id,
            "amountMicros": awarded.micros(),
            "from": "player_wallet",
            "to": "jackpot_reserve",
            "reason": reason,
            "transfers": ledger::audit_list(&[transfer]),
        }),
    };
    audit::append(conn, &[entry]).await?;
    Ok(Ok(record))
}
