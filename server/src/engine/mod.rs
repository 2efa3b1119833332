//! The jackpot engine: contributions applied in arrival order, awards paid
//! exactly once, and cycles opened from their seed. Every change to a jackpot
//! happens in one PostgreSQL transaction under that jackpot's row lock.

mod award;
mod batcher;
mod configure;
mod contribute;
mod cycle;
mod dedupe;
mod player;
mod receipt;
mod rollback;
mod spin;

use chrono::{DateTime, Utc};
use domain::ids::ProviderId;
use domain::jackpot::{ContributionRejected, TriggerMode};
use domain::money::{Amount, Currency};
use sha2::{Digest, Sha256};

pub use award::{award, AwardError, AwardRequest};
pub use configure::{ChangeReceipt, ConfigError, JackpotEdit};
pub use cycle::open_first_cycle;
pub use player::{
    change_limits, deposit, fairness, limits, rotate_seed, welcome, DepositRefusal, DepositRequest,
    Deposited, Fairness, LimitsNow,
};
pub use receipt::PlayedSpin;
pub use rollback::RollbackError;
pub use spin::{SpinOutcome, SpinRefusal, SpinRequest, Spins};

use crate::audit::Actor;
use crate::db;
use crate::db::awards::AwardRecord;
use crate::db::ledger::{AccountKind, Accounts};
use crate::db::SequenceIds;

pub use crate::config::{BatchLimits, CommitMode};

/// Why the engine could not answer. Nothing of the request was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineFailure {
    #[error("the contribution queue is full")]
    Overloaded,
    /// The request waited in the queue past `engine.queue_deadline_ms`.
    #[error("the request waited too long for the database")]
    Expired,
    #[error("storage failed: {0}")]
    Storage(std::sync::Arc<sqlx::Error>),
}

impl From<sqlx::Error> for EngineFailure {
    fn from(error: sqlx::Error) -> EngineFailure {
        EngineFailure::Storage(std::sync::Arc::new(error))
    }
}

/// The engine's entry points. An `Err` means nothing of the call was written.
#[derive(Clone)]
pub struct Engine {
    db: sqlx::PgPool,
    accounts: Accounts,
    /// Writes contributions: through the batcher, or directly (the baseline).
    writer: batcher::Writer,
    batcher: Option<batcher::Batcher<batcher::Writer>>,
}

impl Engine {
    /// With `CommitMode::GroupCommit`, starts the batcher on the current runtime.
    pub fn new(db: sqlx::PgPool, mode: CommitMode, limits: BatchLimits) -> Engine {
        let accounts = Accounts::new(db.clone());
        let grouped = mode == CommitMode::GroupCommit;
        let writer =
            batcher::Writer::new(db.clone(), accounts.clone(), SequenceIds::batches(db.clone()), grouped);
        let batcher = grouped.then(|| batcher::Batcher::start(writer.clone(), limits));
        Engine { db, accounts, writer, batcher }
    }

    /// The ledger's account ids, shared by everything this engine writes.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Answers after the contribution's transaction has committed.
    pub async fn contribute(
        &self,
        request: ContributionRequest,
    ) -> Result<Result<ContributionReceipt, ContributionError>, EngineFailure> {
        let outcome = match &self.batcher {
            Some(batcher) => batcher.submit(request).await?,
            None => {
                let mut outcomes = self.writer.write(std::slice::from_ref(&request)).await?;
                outcomes.pop().expect("one outcome per request")
            }
        };
        let counted = if outcome.is_ok() { "accepted" } else { "refused" };
        metrics::counter!("cekpot_contributions_total", "outcome" => counted).increment(1);
        if let Ok(ContributionReceipt { award: Some(award), .. }) = &outcome {
            count_award(award);
        }
        Ok(outcome)
    }

    /// Changes a jackpot's configuration; see [`JackpotEdit`] for what waits
    /// for the next cycle.
    pub async fn configure(
        &self,
        jackpot_id: &str,
        edit: &JackpotEdit,
        actor: &Actor,
        reason: &str,
    ) -> Result<Result<ChangeReceipt, ConfigError>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let outcome = configure::configure(&mut tx, jackpot_id, edit, actor, reason).await?;
        if outcome.is_ok() {
            tx.commit().await?;
            metrics::counter!("cekpot_jackpot_changes_total").increment(1);
        }
        Ok(outcome)
    }

    /// Rolls an award back; see [`rollback::rollback`]. Commits only a rollback.
    pub async fn rollback(
        &self,
        award_id: i64,
        actor: &Actor,
        reason: &str,
    ) -> Result<Result<db::awards::RollbackRecord, RollbackError>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let outcome = rollback::rollback(&mut tx, &self.accounts, award_id, actor, reason).await?;
        if outcome.is_ok() {
            tx.commit().await?;
            metrics::counter!("cekpot_award_rollbacks_total").increment(1);
        }
        Ok(outcome)
    }

    /// Commits whatever the award decided, the refusals included: every claim
    /// is recorded.
    pub async fn award(
        &self,
        request: AwardRequest,
    ) -> Result<Result<AwardReceipt, AwardError>, sqlx::Error> {
        // The winner's wallet is opened inside, only if the award pays: a
        // refused claim opens no account.
        let started = Utc::now();
        let mut tx = self.db.begin().await?;
        let outcome = award(&mut tx, &self.accounts, &request).await?;
        tx.commit().await?;
        // A replayed claim answers the award it made before: count it once.
        if let Ok(receipt) = &outcome {
            if receipt.awarded_at >= started {
                count_award(receipt);
            }
        }
        Ok(outcome)
    }
}

fn count_award(award: &AwardReceipt) {
    metrics::counter!("cekpot_awards_total", "trigger_mode" => award.trigger_mode.as_str()).increment(1);
}

/// Where a contribution or an award claim comes from: the namespace of its
/// idempotency key and of the player it names. Provider A's key `round-1`
/// and provider B's are two requests; A's player `42`, B's and the Mini
/// App's player 42 are three wallets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The Mini App's own slot: its players are Mini App players.
    House,
    /// An outside game provider (a service key's `provider`): its players
    /// are external players.
    Provider(ProviderId),
}

impl Origin {
    /// As stored: a provider's id, or `@house`, which no provider id can be
    /// (it never starts with `@`).
    pub fn as_str(&self) -> &str {
        match self {
            Origin::House => "@house",
            Origin::Provider(provider) => provider.as_str(),
        }
    }

    /// The ledger account that pays the player this origin names `player_id`.
    pub fn wallet(&self, player_id: &str) -> (AccountKind, String) {
        match self {
            Origin::House => (AccountKind::PlayerWallet, player_id.to_owned()),
            Origin::Provider(provider) => {
                (AccountKind::ExternalWallet, domain::ids::ExternalPlayer::owner_of(provider, player_id))
            }
        }
    }
}

/// One bet's contribution, as a caller asked for it.
#[derive(Debug, Clone)]
pub struct ContributionRequest {
    /// Who sent it; recorded with the contribution and in the audit trail.
    pub actor: Actor,
    /// Its idempotency key's and its player's namespace.
    pub origin: Origin,
    pub jackpot_id: String,
    pub game_id: String,
    pub player_id: String,
    pub bet: Amount,
    pub currency: Currency,
    pub idempotency_key: String,
}

impl ContributionRequest {
    /// SHA-256 over the request's fields: the same idempotency key with a
    /// different request is refused rather than replayed.
    pub fn fingerprint(&self) -> Vec<u8> {
        fingerprint(&[
            "contribute",
            &self.jackpot_id,
            &self.game_id,
            &self.player_id,
            &self.bet.micros().to_string(),
            self.currency.as_str(),
        ])
    }
}

pub(crate) fn fingerprint(fields: &[&str]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for field in fields {
        // Length-prefixed, so no two field lists hash alike.
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}

/// What an accepted contribution did. A replay returns the original receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContributionReceipt {
    pub contribution_id: i64,
    pub jackpot_id: String,
    pub cycle: i64,
    pub bet: Amount,
    /// The accepted share: pool share + reserve share.
    pub contribution: Amount,
    pub pool_share: Amount,
    pub reserve_share: Amount,
    /// The pool after this contribution.
    pub value: Amount,
    /// Set when this contribution carried a must-drop pool past its drop point.
    pub award: Option<AwardReceipt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContributionError {
    #[error("no jackpot with this id")]
    JackpotNotFound,
    #[error("the jackpot is paused")]
    JackpotPaused,
    #[error("the bet's currency is not the jackpot's")]
    CurrencyMismatch,
    #[error("this game does not feed this jackpot")]
    GameNotEligible,
    #[error("{0}")]
    Rejected(ContributionRejected),
    #[error("this idempotency key was used for a different request")]
    IdempotencyKeyReused,
}

/// A paid award, with the cycle's revealed fairness data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardReceipt {
    pub award_id: i64,
    pub jackpot_id: String,
    pub cycle: i64,
    /// The namespace of `player_id`: `@house` or a provider.
    pub origin: String,
    pub player_id: String,
    pub session_id: Option<String>,
    pub awarded_amount: Amount,
    pub trigger_mode: TriggerMode,
    pub contribution_id: Option<i64>,
    pub rolled_back: bool,
    pub awarded_at: DateTime<Utc>,
    pub drop_point: Option<Amount>,
    pub salt: Option<String>,
    pub commitment: Option<String>,
}

impl TryFrom<AwardRecord> for AwardReceipt {
    type Error = sqlx::Error;

    fn try_from(record: AwardRecord) -> Result<AwardReceipt, sqlx::Error> {
        let trigger_mode = record
            .trigger_mode
            .parse()
            .map_err(|e| sqlx::Error::Decode(format!("award {}: {e}", record.id).into()))?;
        Ok(AwardReceipt {
            award_id: record.id,
            jackpot_id: record.jackpot_id,
            cycle: record.cycle_number,
            origin: record.origin,
            player_id: record.player_id,
            session_id: record.session_id,
            awarded_amount: Amount::from_micros(record.awarded_amount_micros),
            trigger_mode,
            contribution_id: record.contribution_id,
            rolled_back: record.status == "rolled_back",
            awarded_at: record.created_at,
            drop_point: record.drop_point_micros.map(Amount::from_micros),
            salt: record.salt,
            commitment: record.commitment,
        })
    }
}
