//! Group commit. Every spin touches the same shared and mega pools, so writing
//! each contribution in its own transaction would serialise all of them on
//! those rows. Instead, contributions that arrive within a short window are
//! written together (one multi-row insert, one update per pool, one ledger
//! posting), and each caller is answered only after that write has committed.
//!
//! A batch is first tried from the jackpots as this engine's previous batch
//! left them, as one self-checking statement (no lock, no transaction: see
//! [`crate::db::batches`]). When a pool changed meanwhile — another instance,
//! an award, a configuration change — or the batch needs what only the locked
//! path does (a drop, a refusal, a stored key), it runs again in a transaction
//! that locks the jackpots first.
//!
//! Work whose caller is gone is not written: when a batch starts, a request
//! whose caller stopped waiting (its answer would go nowhere) is dropped, and
//! one that waited past the queue's deadline is answered `Expired` — in both
//! cases nothing of it was applied, and the caller's retry with the same key
//! is a first attempt. A batch that fails because the database cannot be
//! reached answers all its callers at once instead of retrying each alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub use crate::config::BatchLimits;

use super::contribute::{apply_batch, BatchAbort, BatchDone, Footing, KeyCheck};
use super::{ContributionError, ContributionReceipt, ContributionRequest, EngineFailure};
use crate::db::jackpots::LockedJackpot;
use crate::db::ledger::Accounts;
use crate::db::SequenceIds;

type Outcome = Result<ContributionReceipt, ContributionError>;
type Reply<O> = oneshot::Sender<Result<O, EngineFailure>>;

/// Something a queued request keeps alive until it is written or dropped
/// (a spin's pass through the door).
pub type Hold = Box<dyn Send>;

/// A request waiting for its batch.
struct Queued<W: Write> {
    request: W::Request,
    caller: Caller<W::Outcome>,
}

/// Who waits for a request's answer, since when, and what it keeps alive.
struct Caller<O> {
    reply: Reply<O>,
    queued_at: tokio::time::Instant,
    _hold: Option<Hold>,
}

impl<O> Caller<O> {
    /// The caller, if the request is still worth writing: its caller waits
    /// and it has not waited past `deadline` (then the caller is told so).
    /// A request dropped here is counted in `dropped_metric` by reason.
    fn still_wanted(self, deadline: std::time::Duration, dropped_metric: &'static str) -> Option<Caller<O>> {
        let reason = if self.reply.is_closed() {
            "caller_gone"
        } else if self.queued_at.elapsed() > deadline {
            let _ = self.reply.send(Err(EngineFailure::Expired));
            "deadline"
        } else {
            return Some(self);
        };
        metrics::counter!(dropped_metric, "reason" => reason).increment(1);
        None
    }

    fn answer(self, result: Result<O, EngineFailure>) {
        let _ = self.reply.send(result);
    }
}

/// What a batcher writes with: all of a batch, in one transaction, or nothing.
pub trait Write: Clone + Send + Sync + 'static {
    type Request: Send + 'static;
    type Outcome: Send + 'static;
    /// Names the batches in logs.
    const KIND: &'static str;
    /// Histogram: requests per batch.
    const SIZE_METRIC: &'static str;
    /// Histogram: one batch, first statement to commit.
    const SECONDS_METRIC: &'static str;
    /// Counter: batches that failed whole and were retried one by one.
    const FAILURES_METRIC: &'static str;
    /// Counter: queued requests dropped unwritten (`reason`: `caller_gone`, `deadline`).
    const DROPPED_METRIC: &'static str;
    /// One outcome per request, in order, after the commit.
    fn write(
        &self,
        requests: &[Self::Request],
    ) -> impl std::future::Future<Output = Result<Vec<Self::Outcome>, sqlx::Error>> + Send;
}

pub struct Batcher<W: Write> {
    queue: mpsc::Sender<Queued<W>>,
}

impl<W: Write> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Batcher { queue: self.queue.clone() }
    }
}

impl<W: Write> Batcher<W> {
    /// Starts the collector task on the current runtime.
    pub fn start(writer: W, limits: BatchLimits) -> Batcher<W> {
        let (queue, receiver) = mpsc::channel(limits.queue_max);
        tokio::spawn(collect(writer, limits, receiver));
        Batcher { queue }
    }

    /// Answers after the request's batch has committed. Dropping the future
    /// (the caller went away) before the batch starts means the request is
    /// never written.
    pub async fn submit(&self, request: W::Request) -> Result<W::Outcome, EngineFailure> {
        self.submit_holding(request, None).await
    }

    /// As [`Batcher::submit`], keeping `hold` alive until the request is
    /// written or dropped.
    pub async fn submit_holding(
        &self,
        request: W::Request,
        hold: Option<Hold>,
    ) -> Result<W::Outcome, EngineFailure> {
        let (reply, answer) = oneshot::channel();
        let caller = Caller { reply, queued_at: tokio::time::Instant::now(), _hold: hold };
        let queued = Queued { request, caller };
        self.queue.try_send(queued).map_err(|_| EngineFailure::Overloaded)?;
        match answer.await {
            Ok(result) => result,
            // The batch task ended without answering: it panicked. Nothing was
            // committed for this request.
            Err(_) => Err(EngineFailure::Storage(Arc::new(sqlx::Error::WorkerCrashed))),
        }
    }
}

async fn collect<W: Write>(writer: W, limits: BatchLimits, mut receiver: mpsc::Receiver<Queued<W>>) {
    let permits = Arc::new(Semaphore::new(limits.in_flight_max));
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let permit = match permits.clone().try_acquire_owned() {
            // A slot is free: wait the window for company.
            Ok(permit) => {
                let deadline = tokio::time::Instant::now() + limits.window;
                while batch.len() < limits.size_max {
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(item)) => batch.push(item),
                        Ok(None) | Err(_) => break,
                    }
                }
                permit
            }
            // Every slot is busy: the batch in flight is the window, and the
            // next one goes the moment it is done, with whatever queued up.
            Err(_) => permits.clone().acquire_owned().await.expect("the semaphore is never closed"),
        };
        while batch.len() < limits.size_max {
            match receiver.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let writer = writer.clone();
        let deadline = limits.deadline;
        tokio::spawn(async move {
            commit(&writer, batch, deadline).await;
            drop(permit);
        });
    }
}

/// The requests of `batch` still worth writing, with their callers; each
/// dropped request's hold goes with it.
fn still_wanted<W: Write>(
    batch: Vec<Queued<W>>,
    deadline: std::time::Duration,
) -> (Vec<W::Request>, Vec<Caller<W::Outcome>>) {
    batch
        .into_iter()
        .filter_map(|Queued { request, caller }| {
            caller.still_wanted(deadline, W::DROPPED_METRIC).map(|caller| (request, caller))
        })
        .unzip()
}

/// Writes the batch — what of it is still wanted. If that fails as a whole,
/// each request is retried alone, so one request that trips the database
/// cannot fail the others with it; unless the database cannot be reached,
/// which fails every request alike and is answered to all at once.
async fn commit<W: Write>(writer: &W, batch: Vec<Queued<W>>, deadline: std::time::Duration) {
    let (requests, callers) = still_wanted(batch, deadline);
    if requests.is_empty() {
        return;
    }
    metrics::histogram!(W::SIZE_METRIC).record(requests.len() as f64);
    let started = std::time::Instant::now();
    let result = writer.write(&requests).await;
    metrics::histogram!(W::SECONDS_METRIC).record(started.elapsed());
    let error = match result {
        Ok(outcomes) => {
            for (caller, outcome) in callers.into_iter().zip(outcomes) {
                caller.answer(Ok(outcome));
            }
            return;
        }
        Err(error) if requests.len() == 1 || crate::db::is_unreachable(&error) => {
            let failure = EngineFailure::Storage(Arc::new(error));
            for caller in callers {
                caller.answer(Err(failure.clone()));
            }
            return;
        }
        Err(error) => error,
    };
    tracing::warn!(%error, size = requests.len(), kind = W::KIND, "batch failed; retrying its requests one by one");
    metrics::counter!(W::FAILURES_METRIC).increment(1);
    let mut left = requests.into_iter().zip(callers);
    while let Some((request, caller)) = left.next() {
        // The retries take time: a caller that stopped waiting meanwhile is dropped.
        let Some(caller) = caller.still_wanted(deadline, W::DROPPED_METRIC) else { continue };
        match writer.write(std::slice::from_ref(&request)).await {
            Ok(mut outcomes) => caller.answer(Ok(outcomes.pop().expect("one outcome per request"))),
            Err(error) => {
                let unreachable = crate::db::is_unreachable(&error);
                let failure = EngineFailure::Storage(Arc::new(error));
                caller.answer(Err(failure.clone()));
                if unreachable {
                    for (_, rest) in left.by_ref() {
                        rest.answer(Err(failure.clone()));
                    }
                }
            }
        }
    }
}

/// Writes batches of contributions for one engine.
#[derive(Clone)]
pub struct Writer {
    db: PgPool,
    accounts: Accounts,
    batch_ids: SequenceIds,
    /// `None` where every batch locks (the one-transaction-per-contribution
    /// baseline).
    known: Option<Known>,
}

/// The jackpots as this engine's last batch left them, for the next batch to
/// be computed from without a lock, and the connections that batch writes on.
#[derive(Clone)]
struct Known {
    db: PgPool,
    jackpots: Arc<Mutex<HashMap<String, LockedJackpot>>>,
}

/// Connections for unlocked batches: one batch is in flight at a time (two
/// leave room for a slow release).
const UNLOCKED_CONNECTIONS: u32 = 2;

impl Write for Writer {
    type Request = ContributionRequest;
    type Outcome = Outcome;
    const KIND: &'static str = "contribution";
    const SIZE_METRIC: &'static str = "cekpot_contribution_batch_size";
    const SECONDS_METRIC: &'static str = "cekpot_contribution_batch_seconds";
    const FAILURES_METRIC: &'static str = "cekpot_contribution_batch_failures_total";
    const DROPPED_METRIC: &'static str = "cekpot_contributions_dropped_total";

    async fn write(&self, requests: &[ContributionRequest]) -> Result<Vec<Outcome>, sqlx::Error> {
        Writer::write(self, requests).await
    }
}

impl Writer {
    pub fn new(db: PgPool, accounts: Accounts, batch_ids: SequenceIds, unlocked_first: bool) -> Writer {
        // The unlocked statements get connections of their own, taken without
        // the pool's usual ping: a connection that turns out broken fails the
        // statement, which then runs locked on the main pool.
        let unlocked = PgPoolOptions::new()
            .max_connections(UNLOCKED_CONNECTIONS)
            .acquire_timeout(db.options().get_acquire_timeout())
            .test_before_acquire(false)
            .connect_lazy_with((*db.connect_options()).clone());
        let known = unlocked_first.then(|| Known { db: unlocked, jackpots: Arc::default() });
        Writer { db, accounts, batch_ids, known }
    }

    /// Writes `requests` as one batch, all or nothing; answers an outcome per
    /// request, in order, after the commit.
    pub async fn write(&self, requests: &[ContributionRequest]) -> Result<Vec<Outcome>, sqlx::Error> {
        // No account is opened here: a game's clearing account is opened by
        // the first contribution the batch accepts for it, and a wallet by
        // the award that pays it, so a refused request opens none.
        let batch_id = self.batch_ids.next().await?;
        let keys = match self.unlocked(batch_id, requests).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(keys) => keys,
        };
        let result = self.locked(batch_id, requests, keys).await;
        match result {
            Ok(done) => {
                self.remember(done.jackpots);
                metrics::counter!("cekpot_contribution_batches_total", "path" => "locked").increment(1);
                Ok(done.outcomes)
            }
            Err(error) => {
                self.forget();
                Err(error)
            }
        }
    }

    /// The batch from the known jackpots, as one statement. `Err` when it
    /// must run locked (nothing was written then), with how to treat its keys:
    /// a batch that met a stored key looks its keys up straight away.
    async fn unlocked(
        &self,
        batch_id: i64,
        requests: &[ContributionRequest],
    ) -> Result<Vec<Outcome>, KeyCheck> {
        let Some(Known { db, jackpots }) = self.known.as_ref() else {
            return Err(KeyCheck::AssumeNew);
        };
        let known = jackpots.lock().expect("the jackpot cache is never poisoned").clone();
        if known.is_empty() {
            return Err(KeyCheck::AssumeNew);
        }
        let attempt = async {
            let mut conn = db.acquire().await?;
            apply_batch(&mut conn, &self.accounts, batch_id, requests, Footing::Cached(&known), &[]).await
        };
        match attempt.await {
            Ok(done) => {
                self.remember(done.jackpots);
                metrics::counter!("cekpot_contribution_batches_total", "path" => "unlocked").increment(1);
                Ok(done.outcomes)
            }
            // A client's retry: the known pools may well be current.
            Err(BatchAbort::KeysStored) => Err(KeyCheck::LookUp),
            Err(abort) => {
                if let BatchAbort::Storage(error) = abort {
                    tracing::debug!(%error, "unlocked batch failed; running it locked");
                }
                self.forget();
                Err(KeyCheck::AssumeNew)
            }
        }
    }

    /// The batch in a transaction that locks its jackpots ([`Retries`]),
    /// run once more with the stored keys looked up when a key turned out to
    /// be stored already (a client's retry). Under the lock, keys are read
    /// before the write and every pool is as read: no other abort is one to
    /// run again.
    async fn locked(
        &self,
        batch_id: i64,
        requests: &[ContributionRequest],
        mut keys: KeyCheck,
    ) -> Result<BatchDone, sqlx::Error> {
        let mut retries = Retries::new("contribution");
        loop {
            let result = async {
                let mut tx = self.db.begin().await?;
                let done =
                    apply_batch(&mut tx, &self.accounts, batch_id, requests, Footing::Locked(keys), &[])
                        .await?;
                tx.commit().await?;
                Ok(done)
            }
            .await;
            match result {
                Ok(done) => return Ok(done),
                Err(BatchAbort::KeysStored) if keys == KeyCheck::AssumeNew => keys = KeyCheck::LookUp,
                Err(abort) => retries.again(abort)?,
            }
        }
    }

    fn remember(&self, jackpots: Vec<LockedJackpot>) {
        if let Some(known) = &self.known {
            let mut known = known.jackpots.lock().expect("the jackpot cache is never poisoned");
            for jackpot in jackpots {
                known.insert(jackpot.jackpot.id.clone(), jackpot);
            }
        }
    }

    fn forget(&self) {
        if let Some(known) = &self.known {
            known.jackpots.lock().expect("the jackpot cache is never poisoned").clear();
        }
    }
}

/// The one retry rule of the batch writers, for an abort its writer does not
/// answer with another footing (a lock, the stored keys looked up): a
/// deadlock or serialization failure runs the batch again as it was, three
/// times in all; any other abort is the batch's error.
pub(super) struct Retries {
    kind: &'static str,
    tries: u32,
}

impl Retries {
    pub(super) fn new(kind: &'static str) -> Retries {
        Retries { kind, tries: 1 }
    }

    /// `Ok` to run the batch again, or its error.
    pub(super) fn again(&mut self, abort: BatchAbort) -> Result<(), sqlx::Error> {
        match abort {
            BatchAbort::Storage(error) if self.tries < 3 && crate::db::is_retryable(&error) => {
                tracing::warn!(%error, attempt = self.tries, kind = self.kind, "batch transaction aborted; running it again");
                self.tries += 1;
                Ok(())
            }
            BatchAbort::Storage(error) => Err(error),
            other => Err(sqlx::Error::Protocol(format!(
                "a {} batch aborted where it cannot: {other:?}",
                self.kind
            ))),
        }
    }
}
