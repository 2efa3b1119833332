//! Provably-fair must-drop jackpots: a secret drop point drawn uniformly in
//! `[seed, max)` and a public commitment to it.
//!
//! The commitment is `SHA-256(drop point ‖ ":" ‖ salt)` over ASCII text: the
//! drop point as a decimal integer of micro-units, and the 32-byte salt as 64
//! lower-case hex digits. Anyone can check a revealed pair, e.g. for a drop
//! point of 5 123.456789 (5123456789 micro-units):
//!
//! ```text
//! printf '%s:%s' 5123456789 <salt hex> | sha256sum
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::money::Amount;

/// 32 random bytes that keep a drop point from being guessed from its commitment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt([u8; 32]);

/// The published SHA-256 of a drop point and its salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal digits")]
pub struct HexError;

impl Salt {
    pub const fn from_bytes(bytes: [u8; 32]) -> Salt {
        Salt(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Redacted: a salt is secret until its cycle is awarded.
impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl FromStr for Salt {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Salt)
    }
}

impl Commitment {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `drop_point` and `salt` are what was committed to.
    pub fn verifies(&self, drop_point: Amount, salt: &Salt) -> bool {
        commit(drop_point, salt) == *self
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Commitment {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Commitment)
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], HexError> {
    let mut bytes = [0u8; 32];
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(HexError);
    }
    hex::decode_to_slice(s, &mut bytes).map_err(|_| HexError)?;
    Ok(bytes)
}

pub fn commit(drop_point: Amount, salt: &Salt) -> Commitment {
    let mut hasher = Sha256::new();
    hasher.update(drop_point.micros().to_string().as_bytes());
    hasher.update(b":");
    hasher.update(salt.to_hex().as_bytes());
    Commitment(hasher.finalize().into())
}

/// Draws a drop point uniformly in `[seed, max)` from `random`, a source of
/// uniformly random `u64`s (the server passes the operating system's CSPRNG).
/// Rejection sampling removes the bias a plain modulo would have.
///
/// Panics if `seed >= max`: `jackpot::Rules` guarantees it never is.
pub fn draw_drop_point(seed: Amount, max: Amount, mut random: impl FnMut() -> u64) -> Amount {
    assert!(seed < max, "a drop point needs a non-empty [seed, max)");
    let span = (max.micros() - seed.micros()) as u64;
    // The largest multiple of `span` that fits in u64's range of 2^64 values.
    let zone = u64::MAX - (u64::MAX - span + 1) % span;
    loop {
        let candidate = random();
        if candidate <= zone {
            return Amount::from_micros(seed.micros() + (candidate % span) as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `printf '%s:%s' 5123456789 0101…01 | sha256sum` (coreutils), 32 bytes of 0x01.
    const KNOWN_ANSWER: &str = "faf04487556975c1574e23eb474a465db1e2c2699b6310967c3b39dad568f292";

    #[test]
    fn the_commitment_is_the_documented_sha256() {
        let salt = Salt::from_bytes([1; 32]);
        let commitment = commit(Amount::from_micros(5_123_456_789), &salt);
        let expected = {
            let text = format!("5123456789:{}", "01".repeat(32));
            hex::encode(Sha256::digest(text.as_bytes()))
        };
        assert_eq!(commitment.to_hex(), expected);
        assert_eq!(commitment.to_hex(), KNOWN_ANSWER);
    }

    #[test]
    fn hex_forms_round_trip_and_bad_hex_is_refused() {
        let salt = Salt::from_bytes([0xab; 32]);
        assert_eq!(salt.to_hex().parse::<Salt>().unwrap(), salt);
        assert_eq!("ab".parse::<Salt>(), Err(HexError));
        assert_eq!("AB".repeat(32).parse::<Salt>(), Err(HexError), "one spelling only: lower case");
        assert_eq!("zz".repeat(32).parse::<Commitment>(), Err(HexError));
        assert_eq!(format!("{salt:?}"), "Salt(..)");
    }

    #[test]
    fn sampling_rejects_the_biased_tail() {
        // span 3: 2^64 values leave a remainder of 1, so u64::MAX itself is rejected.
        let mut values = [u64::MAX, 4].into_iter();
        let point =
            draw_drop_point(Amount::from_micros(10), Amount::from_micros(13), || values.next().unwrap());
        assert_eq!(point.micros(), 10 + 4 % 3);
    }

    proptest! {
        #[test]
        fn a_drop_point_is_always_in_seed_to_max(
            seed in 0..i64::MAX / 2, span in 1..i64::MAX / 2, random in any::<u64>(), fallback in any::<u64>(),
        ) {
            let (seed, max) = (Amount::from_micros(seed), Amount::from_micros(seed + span));
            let mut values = [random, fallback, 0].into_iter();
            let point = draw_drop_point(seed, max, || values.next().unwrap_or(0));
            prop_assert!(seed <= point && point < max);
        }

        #[test]
        fn commitments_verify_and_bind_to_their_values(point in any::<i64>(), other in any::<i64>(), salt in any::<[u8; 32]>()) {
            let salt = Salt::from_bytes(salt);
            let commitment = commit(Amount::from_micros(point), &salt);
            prop_assert!(commitment.verifies(Amount::from_micros(point), &salt));
            prop_assert_eq!(commitment.to_hex().parse::<Commitment>().unwrap(), commitment);
            if other != point {
                prop_assert!(!commitment.verifies(Amount::from_micros(other), &salt));
            }
        }
    }
}
