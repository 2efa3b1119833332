//! `server audit verify`: re-reads the chain from PostgreSQL and from the WORM
//! bucket, re-computes every link, and names the first one that breaks. The
//! bucket's copy is also compared record by record with the database's, so a
//! database chain rewritten consistently from some record on is still caught.

use std::collections::HashMap;

use domain::audit::{decode_segment, Break, Chain, Record};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::bucket::Bucket;

/// Records read per query.
const PAGE: i64 = 5_000;
/// And at most about this many bytes of record bodies a page.
const PAGE_BYTES: i64 = 16 << 20;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `database` or `bucket`.
    pub source: &'static str,
    /// Records whose links held.
    pub records: i64,
    /// Segments read (the bucket only).
    pub segments: Option<i64>,
    /// The last record that verified, and its hash.
    pub last_seq: i64,
    pub last_hash: String,
    /// The first broken link, if any.
    pub broken_seq: Option<i64>,
    pub first_break: Option<String>,
    /// What a reader should know that does not break the chain.
    pub notes: Vec<String>,
}

impl Report {
    fn new(source: &'static str) -> Report {
        Report {
            source,
            records: 0,
            segments: None,
            last_seq: 0,
            last_hash: hex::encode(domain::audit::GENESIS),
            broken_seq: None,
            first_break: None,
            notes: Vec::new(),
        }
    }

    pub fn intact(&self) -> bool {
        self.first_break.is_none()
    }

    fn broke(mut self, at: Break) -> Report {
        self.broken_seq = Some(at.seq());
        self.first_break = Some(at.to_string());
        self
    }

    fn held(&mut self, chain: &Chain) {
        self.records += 1;
        self.last_seq = chain.next_seq() - 1;
        self.last_hash = hex::encode(chain.last_hash());
    }

    /// One line for a person.
    pub fn summary(&self) -> String {
        let segments = self.segments.map(|n| format!("{n} segments, ")).unwrap_or_default();
        match &self.first_break {
            None => format!(
                "{}: {segments}{} records, chain intact up to record {} (hash {})",
                self.source, self.records, self.last_seq, self.last_hash
            ),
            Some(why) => format!(
                "{}: BROKEN at record {}: {why} ({} records verified before it)",
                self.source,
                self.broken_seq.unwrap_or_default(),
                self.records
            ),
        }
    }
}

/// A shipped segment as `audit_segments` records it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Shipped {
    number: i64,
    first_seq: i64,
    last_seq: i64,
    object_key: String,
    version_id: Option<String>,
    object_sha256: Vec<u8>,
    last_hash: Vec<u8>,
}

async fn shipped_segments(conn: &mut sqlx::PgConnection) -> Result<Vec<Shipped>, sqlx::Error> {
    sqlx::query_as(
        "select number, first_seq, last_seq, object_key, version_id, object_sha256, last_hash
           from audit_segments order by number",
    )
    .fetch_all(conn)
    .await
}

/// Verifies the records in PostgreSQL, from the first to the chain's head, in
/// one snapshot: every link; the head's count and hash against the last
/// record; and each shipped segment's last hash against the record it ended at.
pub async fn database(db: &PgPool) -> Result<Report, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only").execute(&mut *tx).await?;
    let (head_seq, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("select last_seq, last_hash from audit_chain_head").fetch_one(&mut *tx).await?;
    let segments = shipped_segments(&mut tx).await?;
    let ends: HashMap<i64, &Shipped> = segments.iter().map(|s| (s.last_seq, s)).collect();
    let mut report = Report::new("database");
    let mut chain = Chain::start();
    loop {
        let page = super::records_from(&mut tx, chain.next_seq(), PAGE, PAGE_BYTES).await?;
        for record in &page {
            if let Err(at) = chain.push(record) {
                return Ok(report.broke(at));
            }
            if ends.get(&record.seq).is_some_and(|s| s.last_hash != record.hash) {
                let at =
                    Break::Differs { seq: record.seq, this: "the database", other: "its shipped segment" };
                return Ok(report.broke(at));
            }
            report.held(&chain);
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    let last = report.last_seq;
    if last < head_seq {
        return Ok(report.broke(Break::Truncated { last, expected_last: head_seq }));
    }
    if last > head_seq || (last > 0 && head_hash != chain.last_hash()) {
        let at = Break::Differs { seq: last, this: "the last record", other: "the chain's head" };
        return Ok(report.broke(at));
    }
    for pair in segments.windows(2) {
        if pair[1].first_seq != pair[0].last_seq + 1 || pair[1].number != pair[0].number + 1 {
            report.notes.push(format!("segments {} and {} do not follow on", pair[0].number, pair[1].number));
        }
    }
    let shipped = segments.last().map_or(0, |s| s.last_seq);
    report.notes.push(format!(
        "{} segments shipped, up to record {shipped}; {} records not shipped yet",
        segments.len(),
        last - shipped
    ));
    Ok(report)
}

/// Verifies the segments in the bucket — each key's locked original — in
/// order: every link, every segment locked in COMPLIANCE mode for at least
/// five years from when it was written; with `db`, also every record against
/// the database's and every object against `audit_segments`.
pub async fn bucket(bucket: &Bucket, db: Option<&PgPool>) -> anyhow::Result<Report> {
    let mut report = Report::new("bucket");
    let mut chain = Chain::start();
    let mut segments = 0;
    let recorded: Vec<Shipped> = match db {
        Some(db) => shipped_segments(&mut *db.acquire().await?).await?,
        None => Vec::new(),
    };
    for original in bucket.originals().await? {
        let Some(number) = bucket.segment_number(&original.key) else {
            report.notes.push(format!("{} is not a segment; not read", original.key));
            continue;
        };
        if number != segments + 1 {
            let why = format!("segment {} is missing (the next one is segment {number})", segments + 1);
            broke(&mut report, &chain, segments, why);
            return Ok(report);
        }
        if original.later_versions > 0 || original.delete_markers > 0 {
            report.notes.push(format!(
                "{} was written {} more time(s) and delete-marked {} time(s) after it was sealed; \
                 its locked original is what was verified",
                original.key, original.later_versions, original.delete_markers
            ));
        }
        let lock = bucket.lock(&original.key, original.version_id.as_deref()).await?;
        if let Err(why) = lock.holds_for_five_years() {
            broke(&mut report, &chain, segments, format!("segment {number} ({}) {why}", original.key));
            return Ok(report);
        }
        let bytes = bucket.get(&original.key, original.version_id.as_deref()).await?;
        let decoded = match bytes.as_deref() {
            Some(bytes) => decode_segment(bytes).map_err(|why| format!("cannot be read: {why}")),
            None => Err("is listed but not readable".to_owned()),
        };
        let records = match decoded {
            Ok(records) => records,
            Err(why) => {
                broke(&mut report, &chain, segments, format!("segment {number} ({}) {why}", original.key));
                return Ok(report);
            }
        };
        let stored = match (db, &bytes) {
            (Some(db), Some(bytes)) => {
                match recorded.iter().find(|r| r.number == number) {
                    Some(row) if !row.describes(&original, bytes) => {
                        let why = format!("segment {number}'s object is not the one audit_segments recorded");
                        broke(&mut report, &chain, segments, why);
                        return Ok(report);
                    }
                    Some(_) => {}
                    None => report.notes.push(format!(
                        "segment {number} is in the bucket but not recorded yet (an interrupted run; the \
                         shipper adopts it)"
                    )),
                }
                Some(stored_copies(db, &records).await?)
            }
            _ => None,
        };
        for record in &records {
            let at = match chain.push(record) {
                Err(at) => Some(at),
                Ok(()) if stored.as_ref().is_some_and(|s| s.get(&record.seq) != Some(record)) => {
                    Some(Break::Differs { seq: record.seq, this: "the bucket", other: "the database" })
                }
                Ok(()) => None,
            };
            if let Some(at) = at {
                report.segments = Some(segments);
                return Ok(report.broke(at));
            }
            report.held(&chain);
        }
        segments += 1;
    }
    report.segments = Some(segments);
    if let Some(missing) = recorded.iter().find(|r| r.number > segments) {
        let why = format!("segment {} is recorded as shipped but not in the bucket", missing.number);
        broke(&mut report, &chain, segments, why);
    }
    Ok(report)
}

/// Marks `report` broken where the next record was expected.
fn broke(report: &mut Report, chain: &Chain, segments: i64, why: String) {
    report.segments = Some(segments);
    report.broken_seq = Some(chain.next_seq());
    report.first_break = Some(why);
}

impl Shipped {
    /// Whether `original`, holding `bytes`, is the object this row recorded.
    fn describes(&self, original: &super::bucket::Original, bytes: &[u8]) -> bool {
        let same_version = self.version_id.is_none() || self.version_id == original.version_id;
        self.object_key == original.key
            && same_version
            && self.object_sha256 == Sha256::digest(bytes).as_slice()
    }
}

/// The database's records with the same numbers as `records`.
async fn stored_copies(db: &PgPool, records: &[Record]) -> Result<HashMap<i64, Record>, sqlx::Error> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(HashMap::new());
    };
    let mut conn = db.acquire().await?;
    let copies = super::records_from(&mut conn, first.seq, last.seq - first.seq + 1, i64::MAX).await?;
    Ok(copies.into_iter().filter(|c| c.seq <= last.seq).map(|c| (c.seq, c)).collect())
}
