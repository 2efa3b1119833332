//! The audit trail's hash chain (docs/AUDIT.md): record `n` links to record
//! `n - 1` by
//!
//! ```text
//! hash(n) = SHA-256(hash(n - 1) || body(n)),   hash(0) = 32 zero bytes
//! ```
//!
//! where the body is the record's JSON text exactly as stored, its `seq` field
//! equal to `n`. The database computes the links as it appends; this module
//! re-checks them — for the rows in PostgreSQL and for the segments in the
//! WORM bucket alike — and reads and writes the segment format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The link before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// One record as stored and shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// The record's JSON text, exactly as hashed.
    pub body: String,
}

/// `SHA-256(prev || body)`.
pub fn link(prev: &[u8], body: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(body.as_bytes());
    hasher.finalize().into()
}

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("record {found} follows record {}: record {expected} is missing", expected - 1)]
    Gap { expected: i64, found: i64 },
    #[error("record {seq} does not link to the record before it (its prev_hash is not that record's hash)")]
    PrevHash { seq: i64 },
    #[error("record {seq}'s hash is not SHA-256(prev_hash || body): the record was changed")]
    Hash { seq: i64 },
    #[error("record {seq}'s body is not a record numbered {seq}: {reason}")]
    Body { seq: i64, reason: String },
    #[error("the chain ends at record {last} but {expected_last} records were appended: the last ones are missing")]
    Truncated { last: i64, expected_last: i64 },
    #[error("record {seq} differs between {this} and {other}")]
    Differs { seq: i64, this: &'static str, other: &'static str },
}

impl Break {
    /// The sequence number of the first broken link.
    pub fn seq(&self) -> i64 {
        match self {
            Break::Gap { expected, .. } => *expected,
            Break::PrevHash { seq }
            | Break::Hash { seq }
            | Break::Body { seq, .. }
            | Break::Differs { seq, .. } => *seq,
            Break::Truncated { last, .. } => last + 1,
        }
    }
}

/// Checks records one after another, from any point of the chain whose
/// preceding hash is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    next_seq: i64,
    last_hash: Vec<u8>,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain::start()
    }
}

impl Chain {
    /// Before record 1.
    pub fn start() -> Chain {
        Chain { next_seq: 1, last_hash: GENESIS.to_vec() }
    }

    /// After record `seq`, whose hash is `hash`.
    pub fn after(seq: i64, hash: Vec<u8>) -> Chain {
        Chain { next_seq: seq + 1, last_hash: hash }
    }

    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    pub fn last_hash(&self) -> &[u8] {
        &self.last_hash
    }

    /// Accepts `record` as the next link, or names how it breaks the chain.
    pub fn push(&mut self, record: &Record) -> Result<(), Break> {
        if record.seq != self.next_seq {
            return Err(Break::Gap { expected: self.next_seq, found: record.seq });
        }
        let seq = record.seq;
        if record.prev_hash != self.last_hash {
            return Err(Break::PrevHash { seq });
        }
        if record.hash != link(&record.prev_hash, &record.body) {
            return Err(Break::Hash { seq });
        }
        match body_seq(&record.body) {
            Ok(found) if found == seq => {}
            Ok(found) => return Err(Break::Body { seq, reason: format!("its seq field says {found}") }),
            Err(reason) => return Err(Break::Body { seq, reason }),
        }
        self.next_seq += 1;
        self.last_hash.clone_from(&record.hash);
        Ok(())
    }
}

fn body_seq(body: &str) -> Result<i64, String> {
    #[derive(Deserialize)]
    struct Numbered {
        seq: i64,
    }
    serde_json::from_str::<Numbered>(body).map(|n| n.seq).map_err(|e| format!("not a record: {e}"))
}

/// A sealed segment: consecutive records, one JSON object per line.
pub fn encode_segment(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, record).expect("a record serialises");
        out.push(b'\n');
    }
    out
}

/// Reads a segment written by [`encode_segment`].
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the segment is not UTF-8: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// Hex on the wire for hashes.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: i64) -> Vec<Record> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let body = format!(r#"{{"seq" : {seq}, "action" : "test", "afterMicros" : {}}}"#, seq * 10);
                let hash = link(&prev, &body).to_vec();
                let record = Record { seq, prev_hash: prev.clone(), hash: hash.clone(), body };
                prev = hash;
                record
            })
            .collect()
    }

    fn first_break(records: &[Record]) -> Option<Break> {
        let mut chain = Chain::start();
        records.iter().find_map(|r| chain.push(r).err())
    }

    #[test]
    fn the_link_is_sha256_of_the_previous_hash_then_the_body() {
        // Computed independently, in Python:
        // hashlib.sha256(b'\0' * 32 + b'{"seq":1}').hexdigest()
        let expected = "ff44e121014845ba9f060b9dd529b57e3706d9dcbf47ce18d6a7e50bea6c7e46";
        assert_eq!(hex::encode(link(&GENESIS, r#"{"seq":1}"#)), expected);
    }

    #[test]
    fn an_intact_chain_verifies_and_ends_at_its_last_hash() {
        let records = chain_of(5);
        let mut chain = Chain::start();
        for record in &records {
            chain.push(record).unwrap();
        }
        assert_eq!(chain.next_seq(), 6);
        assert_eq!(chain.last_hash(), records[4].hash.as_slice());
    }

    #[test]
    fn a_changed_body_is_caught_at_its_record() {
        let mut records = chain_of(5);
        records[2].body = records[2].body.replace("30", "31");
        assert_eq!(first_break(&records), Some(Break::Hash { seq: 3 }));
    }

    #[test]
    fn a_rehashed_record_is_caught_by_the_next_link() {
        let mut records = chain_of(5);
        records[2].body = records[2].body.replace("30", "31");
        records[2].hash = link(&records[2].prev_hash, &records[2].body).to_vec();
        assert_eq!(first_break(&records), Some(Break::PrevHash { seq: 4 }));
    }

    #[test]
    fn a_removed_record_is_a_gap() {
        let mut records = chain_of(5);
        records.remove(1);
        let found = first_break(&records).unwrap();
        assert_eq!(found, Break::Gap { expected: 2, found: 3 });
        assert_eq!(found.seq(), 2);
    }

    #[test]
    fn a_body_numbered_otherwise_is_caught() {
        let mut records = chain_of(2);
        records[1].body = r#"{"seq" : 7}"#.into();
        records[1].hash = link(&records[1].prev_hash, &records[1].body).to_vec();
        assert!(matches!(first_break(&records), Some(Break::Body { seq: 2, .. })));
    }

    #[test]
    fn a_segment_round_trips_and_resumes_the_chain() {
        let records = chain_of(6);
        let bytes = encode_segment(&records[3..]);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 3);
        let decoded = decode_segment(&bytes).unwrap();
        assert_eq!(decoded, records[3..]);
        let mut chain = Chain::after(3, records[2].hash.clone());
        for record in &decoded {
            chain.push(record).unwrap();
        }
        assert_eq!(chain.next_seq(), 7);
    }

    #[test]
    fn a_damaged_segment_names_its_line() {
        let mut bytes = encode_segment(&chain_of(2));
        bytes.extend_from_slice(b"{not json}\n");
        assert!(decode_segment(&bytes).unwrap_err().starts_with("line 3:"));
    }
}
