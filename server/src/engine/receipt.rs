//! A played spin: what its player is told, and how `spins.receipt` keeps it
//! so that a retry under the same key answers the same spin again — also
//! after the wire format (`app::api::SpinReceipt`, mapped at the HTTP edge)
//! has grown.
//!
//! The stored form is versioned: [`StoredReceipt::VERSION`] is written with
//! every spin. A field added to version 1 carries `#[serde(default)]`, so
//! older rows still read; a change that cannot default to something true
//! makes a version 2 and keeps reading 1. Rows written before receipts were
//! versioned have no `version` and version 1's fields: they read as 1.

use chrono::{DateTime, Utc};
use domain::money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One spin as it was played.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayedSpin {
    pub spin_id: i64,
    pub bet_amount: Amount,
    /// The paytable's win (line wins), without jackpots.
    pub win: Amount,
    /// Jackpot awards this spin triggered.
    pub jackpot_win: Amount,
    /// Symbol ids, `reels[reel][row]`, top row first.
    pub reels: Vec<Vec<String>>,
    pub line_wins: Vec<PaidLine>,
    /// The wallet just after this spin.
    pub balance: Amount,
    pub currency: Currency,
    pub contributions: Vec<SpinContributed>,
    pub jackpot_awards: Vec<SpinAwarded>,
    pub fairness: SpinSeed,
    pub at: DateTime<Utc>,
}

impl PlayedSpin {
    /// `win + jackpotWin - bet`: what the spin changed in the wallet.
    pub fn net(&self) -> Amount {
        Amount::from_micros(self.win.micros() + self.jackpot_win.micros() - self.bet_amount.micros())
    }

    /// Only a spin that returned more than its bet is a win.
    pub fn is_win(&self) -> bool {
        self.net().micros() > 0
    }
}

/// A payline that paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidLine {
    /// The payline's index, from 0.
    pub line: usize,
    pub symbol: String,
    pub count: usize,
    pub amount: Amount,
}

/// What the spin's bet contributed to one jackpot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinContributed {
    pub jackpot_id: String,
    pub amount: Amount,
    /// The pool just after this contribution.
    pub value: Amount,
}

/// A jackpot the spin won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinAwarded {
    pub award_id: i64,
    pub jackpot_id: String,
    pub cycle: i64,
    pub amount: Amount,
}

/// The provably-fair inputs the spin was drawn from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinSeed {
    pub seed_id: i64,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: i64,
    pub stops: Vec<usize>,
}

/// `spins.receipt`: a [`PlayedSpin`]'s fields and `version`, the version
/// of their form.
pub struct StoredReceipt;

/// A stored receipt this build cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StoredReceiptError {
    #[error("spin receipt version {0} is newer than this build reads (up to {max})", max = StoredReceipt::VERSION)]
    UnknownVersion(u32),
    #[error("spin receipt does not match its version: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl StoredReceipt {
    /// The version written now.
    pub const VERSION: u32 = 1;

    /// The spin as `spins.receipt` keeps it: JSON text, written once
    /// straight from the spin (no `serde_json::Value` tree built, bound and
    /// dropped for every spin of a batch).
    pub fn store(spin: &PlayedSpin) -> Box<RawValue> {
        serde_json::value::to_raw_value(&StoredRef { version: StoredReceipt::VERSION, spin })
            .expect("a receipt serialises")
    }

    /// The spin a stored receipt keeps, whichever version wrote it.
    pub fn read(stored: serde_json::Value) -> Result<PlayedSpin, StoredReceiptError> {
        let version = stored.get("version").map_or(Some(1), serde_json::Value::as_u64);
        match version {
            Some(1) => Ok(serde_json::from_value::<PlayedSpin>(stored)?),
            other => Err(StoredReceiptError::UnknownVersion(
                other.and_then(|v| u32::try_from(v).ok()).unwrap_or(u32::MAX),
            )),
        }
    }
}

/// [`StoredReceipt`] by reference, to store a spin without copying it.
#[derive(Serialize)]
struct StoredRef<'a> {
    version: u32,
    #[serde(flatten)]
    spin: &'a PlayedSpin,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What `spins.receipt` reads back as.
    fn stored_json(spin: &PlayedSpin) -> Value {
        serde_json::from_str(StoredReceipt::store(spin).get()).unwrap()
    }

    fn played() -> PlayedSpin {
        PlayedSpin {
            spin_id: 7,
            bet_amount: Amount::from_micros(2_000_000),
            win: Amount::from_micros(3_000_000),
            jackpot_win: Amount::ZERO,
            reels: vec![vec!["cherry".into(); 3]; 5],
            line_wins: vec![PaidLine {
                line: 0,
                symbol: "cherry".into(),
                count: 3,
                amount: Amount::from_micros(3_000_000),
            }],
            balance: Amount::from_micros(1_001_000_000),
            currency: "CHIPS".parse().unwrap(),
            contributions: vec![SpinContributed {
                jackpot_id: "lucky-sevens".into(),
                amount: Amount::from_micros(20_000),
                value: Amount::from_micros(100_020_000),
            }],
            jackpot_awards: vec![],
            fairness: SpinSeed {
                seed_id: 3,
                server_seed_hash: "ab".repeat(32),
                client_seed: "c0ffee".into(),
                nonce: 4,
                stops: vec![1, 2, 3, 4, 5],
            },
            at: "2026-12-03T10:00:00.123456Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_stored_spin_reads_back_as_it_was_played() {
        let spin = played();
        let stored = stored_json(&spin);
        assert_eq!(stored["version"], json!(StoredReceipt::VERSION));
        assert_eq!(StoredReceipt::read(stored).unwrap(), spin);
        assert_eq!((spin.net(), spin.is_win()), (Amount::from_micros(1_000_000), true));
    }

    #[test]
    fn a_receipt_stored_before_versions_reads_as_version_one() {
        // The answer's body as an earlier build stored it, with the fields
        // it derived (`net`, `isWin`) and its time as text.
        let old = json!({
            "spinId": 7, "betAmount": "2.00", "win": "3.00", "jackpotWin": "0.00", "net": "1.00",
            "isWin": true, "reels": vec![vec!["cherry"; 3]; 5],
            "lineWins": [{ "line": 0, "symbol": "cherry", "count": 3, "amount": "3.00" }],
            "balance": "1001.00", "currency": "CHIPS",
            "contributions": [{ "jackpotId": "lucky-sevens", "amount": "0.02", "value": "100.02" }],
            "jackpotAwards": [],
            "fairness": { "seedId": 3, "serverSeedHash": "ab".repeat(32), "clientSeed": "c0ffee", "nonce": 4,
                          "stops": [1, 2, 3, 4, 5] },
            "at": "2026-12-03T10:00:00.123456Z",
        });
        assert_eq!(StoredReceipt::read(old).unwrap(), played());
    }

    #[test]
    fn a_later_version_or_a_broken_receipt_is_an_error_not_a_guess() {
        let mut newer = stored_json(&played());
        newer["version"] = json!(2);
        assert!(matches!(StoredReceipt::read(newer), Err(StoredReceiptError::UnknownVersion(2))));
        let mut broken = stored_json(&played());
        broken.as_object_mut().unwrap().remove("betAmount");
        assert!(matches!(StoredReceipt::read(broken), Err(StoredReceiptError::Malformed(_))));
    }
}
