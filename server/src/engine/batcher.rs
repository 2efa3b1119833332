//! Group commit. Every spin touches the same shared and mega pools, so writing
//! each contribution in its own transaction would serialise all of them on
//! those rows. Instead, contributions that arrive within a short window are
//! written by one transaction (one multi-row insert, one update per pool), and
//! each caller is answered only after that transaction has committed.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::db::contributions::BatchIds;
use crate::db::ledger::{AccountKind, Accounts};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::contribute::{apply_batch, BatchAbort, KeyCheck};
use super::{ContributionError, ContributionReceipt, ContributionRequest, EngineFailure};

type Outcome = Result<ContributionReceipt, ContributionError>;
type Reply = oneshot::Sender<Result<Outcome, Arc<sqlx::Error>>>;

/// How the batcher groups contributions.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// How long the first contribution of a batch waits for company.
    pub window: Duration,
    /// The most contributions one transaction writes.
    pub size_max: usize,
    /// Batches committing at once.
    pub in_flight_max: usize,
    /// Contributions waiting for a batch before callers are turned away.
    pub queue_max: usize,
}

#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<(ContributionRequest, Reply)>,
}

impl Batcher {
    /// Starts the collector task on the current runtime.
    pub fn start(db: PgPool, accounts: Accounts, batch_ids: BatchIds, limits: BatchLimits) -> Batcher {
        let (queue, receiver) = mpsc::channel(limits.queue_max);
        tokio::spawn(collect(db, accounts, batch_ids, limits, receiver));
        Batcher { queue }
    }

    pub async fn contribute(&self, request: ContributionRequest) -> Result<Outcome, EngineFailure> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send((request, reply)).map_err(|_| EngineFailure::Overloaded)?;
        match answer.await {
            Ok(result) => result.map_err(EngineFailure::Storage),
            // The batch task ended without answering: it panicked. Nothing was
            // committed for this request.
            Err(_) => Err(EngineFailure::Storage(Arc::new(sqlx::Error::WorkerCrashed))),
        }
    }
}

async fn collect(
    db: PgPool,
    accounts: Accounts,
    batch_ids: BatchIds,
    limits: BatchLimits,
    mut receiver: mpsc::Receiver<(ContributionRequest, Reply)>,
) {
    let permits = Arc::new(Semaphore::new(limits.in_flight_max));
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + limits.window;
        while batch.len() < limits.size_max {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        // Wait for a free slot while more contributions queue up behind.
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        while batch.len() < limits.size_max {
            match receiver.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (db, accounts, batch_ids) = (db.clone(), accounts.clone(), batch_ids.clone());
        tokio::spawn(async move {
            commit(&db, &accounts, &batch_ids, batch).await;
            drop(permit);
        });
    }
}

/// Writes the batch in one transaction. If that fails as a whole, each request
/// is retried alone, so one request that trips the database cannot fail the
/// others with it.
async fn commit(
    db: &PgPool,
    accounts: &Accounts,
    batch_ids: &BatchIds,
    batch: Vec<(ContributionRequest, Reply)>,
) {
    let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    metrics::histogram!("cekpot_contribution_batch_size").record(requests.len() as f64);
    let started = std::time::Instant::now();
    let result = in_transaction(db, accounts, batch_ids, &requests).await;
    metrics::histogram!("cekpot_contribution_batch_seconds").record(started.elapsed());
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) if requests.len() == 1 => {
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = requests.len(), "batch failed; retrying its contributions one by one");
            metrics::counter!("cekpot_contribution_batch_failures_total").increment(1);
            for (request, reply) in requests.into_iter().zip(replies) {
                let result = in_transaction(db, accounts, batch_ids, std::slice::from_ref(&request))
                    .await
                    .map(|mut outcomes| outcomes.pop().expect("one outcome per request"))
                    .map_err(Arc::new);
                let _ = reply.send(result);
            }
        }
    }
}

/// Applies `requests` in one transaction, running it again (up to three times
/// in all) when the database aborted it for a deadlock or serialization
/// failure, and once more with the stored keys looked up when a key turned out
/// to be stored already (a client's retry).
pub(super) async fn in_transaction(
    db: &PgPool,
    accounts: &Accounts,
    batch_ids: &BatchIds,
    requests: &[ContributionRequest],
) -> Result<Vec<Outcome>, sqlx::Error> {
    // The accounts a batch may need, created (once) before its transaction
    // holds a connection: creating one inside would take a second connection
    // while holding the first.
    for request in requests {
        accounts.id(AccountKind::GameClearing, &request.game_id, request.currency).await?;
        accounts.id(AccountKind::PlayerWallet, &request.player_id, request.currency).await?;
    }
    let batch_id = batch_ids.next().await?;
    let mut keys = KeyCheck::AssumeNew;
    let mut attempt = 1;
    loop {
        let result = async {
            let mut tx = db.begin().await?;
            let outcomes = apply_batch(&mut tx, accounts, batch_id, requests, keys).await?;
            tx.commit().await?;
            Ok(outcomes)
        }
        .await;
        match result {
            Ok(outcomes) => return Ok(outcomes),
            Err(BatchAbort::KeysStored) if keys == KeyCheck::AssumeNew => keys = KeyCheck::LookUp,
            Err(BatchAbort::KeysStored) => {
                // Keys are read under the jackpots' locks, and only lock
                // holders insert: a stored key cannot appear after the read.
                return Err(sqlx::Error::Protocol("a stored idempotency key appeared under the lock".into()));
            }
            Err(BatchAbort::Storage(error)) if attempt < 3 && crate::db::is_retryable(&error) => {
                tracing::warn!(%error, attempt, "contribution transaction aborted; running it again");
                attempt += 1;
            }
            Err(BatchAbort::Storage(error)) => return Err(error),
        }
    }
}
