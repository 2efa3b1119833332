//! Seals audit records into segments and ships them to the WORM bucket.
//!
//! Segment `n + 1` starts right after segment `n`'s last record, so the
//! segments cover the chain without gaps or overlaps. Shipping one is two
//! steps: write the object (locked, and only if the key is free), then record
//! it in `audit_segments`. A crash between the two leaves an object that is not
//! recorded; the next run's write of that key is refused (`If-None-Match`),
//! so it reads what is there, checks that it continues the chain, matches the
//! database and is locked, and records it instead — so nothing is shipped
//! twice and nothing is skipped. One
//! instance ships at a time (a PostgreSQL advisory lock).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::audit::{decode_segment, encode_segment, Chain, Record};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::bucket::{Bucket, Put};
use crate::config::AuditSettings;

/// Keeps two instances from shipping at once.
const LEASE_KEY: i64 = 0x0063_656b_706f_7403;

/// When a segment that is not full yet is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// When its oldest record reaches `audit.segment_age_max_s`.
    WhenDue,
    /// Now (`server audit ship`).
    Now,
}

/// A shipped segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub number: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub key: String,
    pub version_id: Option<String>,
    pub retain_until: DateTime<Utc>,
    /// Found in the bucket, left by a run that stopped before recording it.
    pub adopted: bool,
}

#[derive(Clone)]
pub struct Shipper {
    db: PgPool,
    bucket: Bucket,
    settings: AuditSettings,
}

/// Where the next segment starts.
#[derive(Debug, Clone)]
struct Next {
    number: i64,
    chain: Chain,
}

/// A segment sealed and sent to the bucket, not recorded yet.
#[derive(Debug)]
pub struct Sealed {
    pub records: Vec<Record>,
    pub bytes: Vec<u8>,
    pub put: Put,
    pub retain_until: DateTime<Utc>,
}

impl Shipper {
    /// A shipper for the bucket of `settings` (`audit.bucket`, required).
    pub fn new(db: PgPool, settings: AuditSettings) -> anyhow::Result<Shipper> {
        settings.check().map_err(anyhow::Error::msg)?;
        let bucket = Bucket::new(settings.bucket.as_ref().context("audit.bucket is not configured")?);
        Ok(Shipper { db, bucket, settings })
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Checks the bucket has Object Lock; creates it when `audit.bucket.create`.
    pub async fn ensure_bucket(&self) -> anyhow::Result<()> {
        self.bucket.ensure(self.settings.bucket.as_ref().is_some_and(|b| b.create)).await
    }

    /// Ships every segment that is due, in order; answers what it shipped.
    /// Does nothing while another instance is shipping.
    pub async fn ship(&self, seal: Seal) -> anyhow::Result<Vec<Shipped>> {
        // A transaction-scoped lock: however this ends — an error, a panic, a
        // cancelled future — the transaction ends with it, and so does the lock.
        let mut lease = self.db.begin().await?;
        let held: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
            .bind(LEASE_KEY)
            .fetch_one(&mut *lease)
            .await?;
        if !held {
            tracing::debug!("another instance is shipping audit segments");
            return Ok(Vec::new());
        }
        let mut shipped = Vec::new();
        while let Some(segment) = self.ship_one(seal).await? {
            shipped.push(segment);
        }
        lease.rollback().await?;
        Ok(shipped)
    }

    async fn ship_one(&self, seal: Seal) -> anyhow::Result<Option<Shipped>> {
        let next = self.next().await?;
        let Some(sealed) = self.seal_and_put_at(&next, seal).await? else {
            return Ok(None);
        };
        let key = self.bucket.segment_key(next.number);
        let segment = match sealed.put {
            Put::Written { version_id } => {
                let segment = self
                    .record(
                        next.number,
                        &key,
                        &sealed.records,
                        &sealed.bytes,
                        version_id,
                        sealed.retain_until,
                    )
                    .await?;
                tracing::info!(
                    segment = segment.number,
                    first = segment.first_seq,
                    last = segment.last_seq,
                    key = %segment.key,
                    "shipped an audit segment"
                );
                segment
            }
            // The key is taken: an interrupted run wrote it and did not record it.
            Put::Exists => self.adopt(next, &key).await?,
        };
        metrics::counter!("cekpot_audit_segments_shipped_total").increment(1);
        Ok(Some(segment))
    }

    /// The first half of shipping: seals the next segment, when one is due, and
    /// writes it to the bucket — without recording it. Public so that a test
    /// can stop where a crash would.
    pub async fn seal_and_put(&self, seal: Seal) -> anyhow::Result<Option<Sealed>> {
        self.seal_and_put_at(&self.next().await?, seal).await
    }

    async fn seal_and_put_at(&self, next: &Next, seal: Seal) -> anyhow::Result<Option<Sealed>> {
        let mut chain = next.chain.clone();
        let (limit, bytes_max) = (self.settings.segment_records_max, self.settings.segment_bytes_max);
        let records =
            super::records_from(&mut *self.db.acquire().await?, chain.next_seq(), limit, bytes_max).await?;
        let Some(first) = records.first() else { return Ok(None) };
        let bytes: i64 = records.iter().map(|r| r.body.len() as i64).sum();
        let full = records.len() as i64 >= limit || bytes >= bytes_max;
        if !full && seal == Seal::WhenDue && !self.is_due(first)? {
            return Ok(None);
        }
        for record in &records {
            // Never ship a broken chain: stop, loudly, for a person to look.
            chain.push(record).map_err(|at| anyhow::anyhow!("not shipping segment {}: {at}", next.number))?;
        }
        let retain_until = Utc::now() + chrono::Duration::days(self.settings.retain_days);
        let bytes = encode_segment(&records);
        let key = self.bucket.segment_key(next.number);
        let put = self.bucket.put_locked(&key, bytes.clone(), retain_until).await?;
        Ok(Some(Sealed { records, bytes, put, retain_until }))
    }

    fn is_due(&self, oldest: &Record) -> anyhow::Result<bool> {
        #[derive(serde::Deserialize)]
        struct Stamped {
            at: DateTime<Utc>,
        }
        let stamped: Stamped = serde_json::from_str(&oldest.body)
            .with_context(|| format!("reading record {}'s time", oldest.seq))?;
        let age = (Utc::now() - stamped.at).to_std().unwrap_or(Duration::ZERO);
        Ok(age >= self.settings.segment_age_max())
    }

    /// Records appended and not shipped yet.
    pub async fn unshipped(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "select (select last_seq from audit_chain_head)
                    - coalesce((select max(last_seq) from audit_segments), 0)",
        )
        .fetch_one(&self.db)
        .await
    }

    async fn next(&self) -> Result<Next, sqlx::Error> {
        let last: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "select number, last_seq, last_hash from audit_segments order by number desc limit 1",
        )
        .fetch_optional(&self.db)
        .await?;
        Ok(match last {
            Some((number, last_seq, last_hash)) => {
                Next { number: number + 1, chain: Chain::after(last_seq, last_hash) }
            }
            None => Next { number: 1, chain: Chain::start() },
        })
    }

    /// Records a segment found at the next key, after checking it is exactly
    /// what this shipper would have written there.
    async fn adopt(&self, Next { number, mut chain }: Next, key: &str) -> anyhow::Result<Shipped> {
        let original = self.bucket.original(key).await?.context("the segment vanished")?;
        let bytes = self
            .bucket
            .get(key, original.version_id.as_deref())
            .await?
            .with_context(|| format!("{key} is listed but cannot be read"))?;
        let records = decode_segment(&bytes).map_err(|why| anyhow::anyhow!("{key}: {why}"))?;
        anyhow::ensure!(!records.is_empty(), "{key} holds no records");
        for record in &records {
            chain.push(record).map_err(|at| anyhow::anyhow!("{key} does not continue the chain: {at}"))?;
        }
        let (first, last) = (records[0].seq, records[records.len() - 1].seq);
        let stored =
            super::records_from(&mut *self.db.acquire().await?, first, last - first + 1, i64::MAX).await?;
        anyhow::ensure!(stored == records, "{key} does not match the database's records {first}..={last}");
        let lock = self.bucket.lock(key, original.version_id.as_deref()).await?;
        let retain_until = lock.holds_for_five_years().map_err(|why| anyhow::anyhow!("{key} {why}"))?;
        let segment = self.record(number, key, &records, &bytes, original.version_id, retain_until).await?;
        tracing::warn!(segment = number, key, "recorded an audit segment an interrupted run had written");
        Ok(Shipped { adopted: true, ..segment })
    }

    async fn record(
        &self,
        number: i64,
        key: &str,
        records: &[Record],
        bytes: &[u8],
        version_id: Option<String>,
        retain_until: DateTime<Utc>,
    ) -> Result<Shipped, sqlx::Error> {
        let (first, last) = (&records[0], &records[records.len() - 1]);
        sqlx::query(
            "insert into audit_segments (number, first_seq, last_seq, object_key, version_id, object_sha256,
                                         last_hash, retain_until)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(number)
        .bind(first.seq)
        .bind(last.seq)
        .bind(key)
        .bind(&version_id)
        .bind(Sha256::digest(bytes).to_vec())
        .bind(&last.hash)
        .bind(retain_until)
        .execute(&self.db)
        .await?;
        Ok(Shipped {
            number,
            first_seq: first.seq,
            last_seq: last.seq,
            key: key.to_owned(),
            version_id,
            retain_until,
            adopted: false,
        })
    }

    /// Ships on a timer until the process ends; failures are logged, counted
    /// and retried at the next tick (records wait in PostgreSQL meanwhile).
    /// The bucket is checked first (see [`Shipper::ensure_bucket`]), until
    /// that succeeds: an unreachable bucket at start-up does not stop the server.
    pub fn spawn(self) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.settings.ship_interval());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut checked = false;
            loop {
                ticks.tick().await;
                if !checked {
                    match self.ensure_bucket().await {
                        Ok(()) => checked = true,
                        Err(error) => {
                            metrics::counter!("cekpot_audit_ship_failures_total").increment(1);
                            tracing::error!(error = format!("{error:#}"), "the audit bucket is not usable");
                            continue;
                        }
                    }
                }
                if let Ok(waiting) = self.unshipped().await {
                    metrics::gauge!("cekpot_audit_unshipped_records").set(waiting as f64);
                }
                if let Err(error) = self.ship(Seal::WhenDue).await {
                    metrics::counter!("cekpot_audit_ship_failures_total").increment(1);
                    tracing::error!(error = format!("{error:#}"), "shipping audit segments failed");
                }
            }
        });
    }
}
