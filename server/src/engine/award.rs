//! Provider-triggered awards: `POST /jackpot/{id}/award`.

use domain::jackpot::{Status, TriggerMode};
use sqlx::PgConnection;

use super::cycle::{award_cycle, Books, Winner};
use super::{fingerprint, AwardReceipt};
use crate::audit::{self, Actor};
use crate::db::awards::{self, Claim, ClaimOutcome, NewClaim};
use crate::db::jackpots::{self, CycleMeters, LockedJackpot};
use crate::db::ledger::{self, Accounts};

#[derive(Debug, Clone)]
pub struct AwardRequest {
    pub actor: Actor,
    /// The namespace of the key and of the player named.
    pub origin: super::Origin,
    pub jackpot_id: String,
    pub player_id: String,
    pub session_id: String,
    pub cycle: i64,
    pub idempotency_key: String,
}

impl AwardRequest {
    fn fingerprint(&self) -> Vec<u8> {
        fingerprint(&["award", &self.jackpot_id, &self.player_id, &self.session_id, &self.cycle.to_string()])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwardError {
    #[error("no jackpot with this id")]
    JackpotNotFound,
    #[error("the jackpot is paused")]
    JackpotPaused,
    #[error("this jackpot is must-drop: the server awards it, not a provider")]
    NotProviderTriggered,
    #[error("cycle {} was already awarded", .0.cycle)]
    AlreadyAwarded(Box<AwardReceipt>),
    #[error("cycle {requested} is not open; the open cycle is {open}")]
    CycleNotOpen { requested: i64, open: i64 },
    #[error("this idempotency key was used for a different request")]
    IdempotencyKeyReused,
}

/// Pays the requested cycle to the player, once. Claims are serialised by the
/// jackpot's row lock and each is recorded with its outcome, so the order of
/// simultaneous claims is kept; a retried claim (same key, same request) gets
/// its first answer again.
pub async fn award(
    conn: &mut PgConnection,
    accounts: &Accounts,
    request: &AwardRequest,
) -> Result<Result<AwardReceipt, AwardError>, sqlx::Error> {
    let hash = request.fingerprint();
    let Some(LockedJackpot { jackpot, cycle: open, .. }) =
        jackpots::lock_with_cycles(conn, &[request.jackpot_id.as_str()]).await?.pop()
    else {
        return Ok(Err(AwardError::JackpotNotFound));
    };
    if let Some(claim) =
        awards::find_claim(conn, &jackpot.id, request.origin.as_str(), &request.idempotency_key).await?
    {
        return replay(conn, claim, &hash, open.cycle_number).await;
    }
    if open.rules.trigger_mode() != TriggerMode::Provider {
        return Ok(Err(AwardError::NotProviderTriggered));
    }
    if jackpot.status == Status::Paused {
        return Ok(Err(AwardError::JackpotPaused));
    }
    let claim = |outcome, award_id| NewClaim {
        jackpot_id: &jackpot.id,
        origin: request.origin.as_str(),
        cycle_number: request.cycle,
        player_id: &request.player_id,
        session_id: &request.session_id,
        idempotency_key: &request.idempotency_key,
        request_hash: &hash,
        outcome,
        award_id,
    };
    if request.cycle == open.cycle_number {
        let winner = Winner {
            actor: &request.actor,
            origin: &request.origin,
            player_id: &request.player_id,
            session_id: Some(&request.session_id),
            contribution_id: None,
        };
        let mut books = Books::open(conn, accounts, &jackpot).await?;
        let (receipt, _next) =
            award_cycle(conn, &jackpot, &open, winner, &CycleMeters::default(), &mut books).await?;
        ledger::post(conn, &books.transfers).await?;
        awards::insert_claim(conn, &claim(ClaimOutcome::Won, Some(receipt.award_id))).await?;
        audit::append(conn, &books.audit).await?;
        return Ok(Ok(receipt));
    }
    match awards::for_cycle(conn, &jackpot.id, request.cycle).await? {
        Some(record) => {
            awards::insert_claim(conn, &claim(ClaimOutcome::AlreadyAwarded, Some(record.id))).await?;
            Ok(Err(AwardError::AlreadyAwarded(Box::new(AwardReceipt::try_from(record)?))))
        }
        None => {
            awards::insert_claim(conn, &claim(ClaimOutcome::CycleNotOpen, None)).await?;
            Ok(Err(AwardError::CycleNotOpen { requested: request.cycle, open: open.cycle_number }))
        }
    }
}

async fn replay(
    conn: &mut PgConnection,
    claim: Claim,
    hash: &[u8],
    open_cycle: i64,
) -> Result<Result<AwardReceipt, AwardError>, sqlx::Error> {
    if claim.request_hash != hash {
        return Ok(Err(AwardError::IdempotencyKeyReused));
    }
    let award = match claim.award_id {
        Some(id) => Some(AwardReceipt::try_from(awards::get(conn, id).await?)?),
        None => None,
    };
    Ok(match (claim.outcome, award) {
        (ClaimOutcome::Won, Some(award)) => Ok(award),
        (ClaimOutcome::AlreadyAwarded, Some(award)) => Err(AwardError::AlreadyAwarded(Box::new(award))),
        (_, _) => Err(AwardError::CycleNotOpen { requested: claim.cycle_number, open: open_cycle }),
    })
}
