//! `server audit verify`: re-reads the chain from PostgreSQL and from the WORM
//! bucket, re-computes every link, and names the first one that breaks. The
//! bucket's copy is also compared record by record with the database's, so a
//! database chain rewritten consistently from some record on is still caught.

use std::collections::HashMap;

use domain::audit::{decode_segment, Break, Chain, Record};
use serde::Serialize;
use sqlx::PgPool;

use super::bucket::Bucket;

/// Records read per query.
const PAGE: i64 = 5_000;

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

/// Verifies the records in PostgreSQL, from the first to the chain's head, in
/// one snapshot.
pub async fn database(db: &PgPool) -> Result<Report, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only").execute(&mut *tx).await?;
    let head: i64 = sqlx::query_scalar("select last_seq from audit_chain_head").fetch_one(&mut *tx).await?;
    let mut report = Report::new("database");
    let mut chain = Chain::start();
    loop {
        let page = super::records_from(&mut tx, chain.next_seq(), PAGE).await?;
        for record in &page {
            if let Err(at) = chain.push(record) {
                return Ok(report.broke(at));
            }
            report.held(&chain);
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    if report.last_seq != head {
        let last = report.last_seq;
        return Ok(report.broke(Break::Truncated { last, expected_last: head }));
    }
    Ok(report)
}

/// Verifies the segments in the bucket — each key's locked original — in
/// order; with `db`, also compares every shipped record with the database's.
pub async fn bucket(bucket: &Bucket, db: Option<&PgPool>) -> anyhow::Result<Report> {
    let mut report = Report::new("bucket");
    let mut chain = Chain::start();
    let mut segments = 0;
    for original in bucket.originals().await? {
        let Some(number) = bucket.segment_number(&original.key) else {
            report.notes.push(format!("{} is not a segment; not read", original.key));
            continue;
        };
        if number != segments + 1 {
            report.segments = Some(segments);
            let why = format!("segment {} is missing (the next one is segment {number})", segments + 1);
            report.broken_seq = Some(chain.next_seq());
            report.first_break = Some(why);
            return Ok(report);
        }
        if original.later_versions > 0 || original.delete_markers > 0 {
            report.notes.push(format!(
                "{} was written {} more time(s) and delete-marked {} time(s) after it was sealed; \
                 its locked original is what was verified",
                original.key, original.later_versions, original.delete_markers
            ));
        }
        let records = match bucket.get(&original.key, original.version_id.as_deref()).await? {
            Some(bytes) => decode_segment(&bytes),
            None => Err("listed but not readable".to_owned()),
        };
        let records = match records {
            Ok(records) => records,
            Err(why) => {
                report.segments = Some(segments);
                report.broken_seq = Some(chain.next_seq());
                report.first_break =
                    Some(format!("segment {number} ({}) cannot be read: {why}", original.key));
                return Ok(report);
            }
        };
        segments += 1;
        report.segments = Some(segments);
        let stored = match db {
            Some(db) => stored_copies(db, &records).await?,
            None => HashMap::new(),
        };
        for record in &records {
            if let Err(at) = chain.push(record) {
                return Ok(report.broke(at));
            }
            if db.is_some() && stored.get(&record.seq) != Some(record) {
                let differs = Break::Differs { seq: record.seq, this: "the bucket", other: "the database" };
                return Ok(report.broke(differs));
            }
            report.held(&chain);
        }
    }
    report.segments = Some(segments);
    Ok(report)
}

/// The database's records with the same numbers as `records`.
async fn stored_copies(db: &PgPool, records: &[Record]) -> Result<HashMap<i64, Record>, sqlx::Error> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(HashMap::new());
    };
    let mut conn = db.acquire().await?;
    let copies = super::records_from(&mut conn, first.seq, last.seq - first.seq + 1).await?;
    Ok(copies.into_iter().filter(|c| c.seq <= last.seq).map(|c| (c.seq, c)).collect())
}
