//! Provably-fair spins, following the common server seed / client seed / nonce
//! convention:
//!
//! - the server draws a secret **server seed** (32 random bytes, written as 64
//!   lower-case hex digits) and shows the player its SHA-256 — the hash of the
//!   64-character text — before the player spins with it;
//! - the player chooses a **client seed**, and each spin has a **spin nonce**
//!   (0, 1, 2 … counting the player's spins under that server seed);
//! - a spin's random bytes are HMAC-SHA256 with the server seed's hex text as
//!   the key and the ASCII message `"<client seed>:<nonce>:<round>"`, for
//!   round = 0, 1, 2 … as more bytes are needed (32 bytes per round);
//! - each reel's stop is read from the bytes four at a time, as big-endian
//!   `u32`s: a value is used only below the largest multiple of the reel's
//!   length that fits in 2³², so every stop is exactly equally likely (no
//!   modulo bias), and the stop is the value modulo the length;
//! - rotating the seed reveals the old server seed, and anyone can then redo
//!   every spin made with it: [`stops`] is all it takes.
//!
//! With `openssl`, round 0 of client seed `lucky` and nonce 7 is
//! `printf 'lucky:7:0' | openssl dgst -sha256 -hmac <server seed hex>`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The longest client seed a player may choose.
pub const CLIENT_SEED_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("a server seed is 64 lower-case hexadecimal digits")]
    ServerSeed,
    #[error("a client seed is 1 to {CLIENT_SEED_MAX} letters, digits, '-' or '_'")]
    ClientSeed,
}

/// Checks a client seed: 1–64 of `[A-Za-z0-9_-]`. The colon that separates
/// the message's parts can never appear in it, so no two inputs share a message.
pub fn check_client_seed(seed: &str) -> Result<(), SeedError> {
    let ok = (1..=CLIENT_SEED_MAX).contains(&seed.len())
        && seed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SeedError::ClientSeed)
    }
}

/// Checks a server seed's written form.
pub fn check_server_seed(seed: &str) -> Result<(), SeedError> {
    let ok = seed.len() == 64 && seed.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SeedError::ServerSeed)
    }
}

/// The hex form of 32 random bytes.
pub fn server_seed_from_bytes(bytes: [u8; 32]) -> String {
    hex::encode(bytes)
}

/// What the player sees before playing: SHA-256 of the server seed's text.
pub fn server_seed_hash(server_seed: &str) -> String {
    hex::encode(Sha256::digest(server_seed.as_bytes()))
}

/// The stream of a spin's random bytes: the HMAC rounds, one after another.
struct Bytes<'a> {
    server_seed: &'a str,
    client_seed: &'a str,
    nonce: u64,
    round: u64,
    block: [u8; 32],
    used: usize,
}

impl Bytes<'_> {
    fn next_u32(&mut self) -> u32 {
        if self.used == self.block.len() {
            self.block = round(self.server_seed, self.client_seed, self.nonce, self.round);
            self.round += 1;
            self.used = 0;
        }
        let word = &self.block[self.used..self.used + 4];
        self.used += 4;
        u32::from_be_bytes([word[0], word[1], word[2], word[3]])
    }
}

/// One round's 32 bytes: HMAC-SHA256(server seed, "client seed:nonce:round").
pub fn round(server_seed: &str, client_seed: &str, nonce: u64, round: u64) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(server_seed.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{client_seed}:{nonce}:{round}").as_bytes());
    mac.finalize().into_bytes().into()
}

/// The stops of a spin, one per reel length given, each uniform in
/// `0..length`. Panics on a zero length (a slot's reels are never empty).
pub fn stops<const N: usize>(
    server_seed: &str,
    client_seed: &str,
    nonce: u64,
    lengths: [usize; N],
) -> [usize; N] {
    let mut bytes = Bytes { server_seed, client_seed, nonce, round: 0, block: [0; 32], used: 32 };
    lengths.map(|length| {
        assert!(length > 0 && length <= u32::MAX as usize, "a reel has 1 to 2^32 - 1 stops");
        let length = length as u64;
        // The largest multiple of `length` not above 2^32.
        let zone = (1u64 << 32) / length * length;
        loop {
            let value = u64::from(bytes.next_u32());
            if value < zone {
                break (value % length) as usize;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = "5b3a0cf1c2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";

    #[test]
    fn a_round_is_the_documented_hmac() {
        // The same computation spelled out with the hmac crate's primitives
        // and the message written out by hand.
        let mut mac = Hmac::<Sha256>::new_from_slice(SEED.as_bytes()).unwrap();
        mac.update(b"lucky:7:0");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(round(SEED, "lucky", 7, 0), expected);
        assert_ne!(round(SEED, "lucky", 7, 1), expected, "rounds differ");
        assert_ne!(round(SEED, "lucky", 8, 0), expected, "nonces differ");
    }

    /// Known answer, computed independently with
    /// `printf 'lucky:7:0' | openssl dgst -sha256 -hmac <SEED>`.
    #[test]
    fn a_round_matches_openssl() {
        assert_eq!(
            hex::encode(round(SEED, "lucky", 7, 0)),
            "049851dcf45726112584351a705434dd9aff222136a39e6636cfd8a4dc254bed"
        );
    }

    #[test]
    fn stops_read_big_endian_words_in_order() {
        let block = round(SEED, "c", 0, 0);
        let word = |i: usize| u64::from(u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap()));
        // Length 2^16 divides 2^32: nothing is ever rejected.
        let got = stops(SEED, "c", 0, [1 << 16, 1 << 16, 7]);
        assert_eq!(got[0] as u64, word(0) % (1 << 16));
        assert_eq!(got[1] as u64, word(1) % (1 << 16));
        assert_eq!(got[2] as u64, word(2) % 7, "2^32 - 4 of 2^32 values are kept for 7; this one was");
    }

    #[test]
    fn the_biased_tail_is_skipped_and_rounds_continue() {
        // A reel of 2^31 + 1 stops keeps only values below 2^31 + 1: about
        // half are rejected, so twenty reels need more than one round.
        let length = (1usize << 31) + 1;
        let got = stops(SEED, "tail", 3, [length; 20]);
        let mut words = (0..).flat_map(|r| {
            let block = round(SEED, "tail", 3, r);
            (0..8).map(move |i| u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().unwrap()) as usize)
        });
        let expected: Vec<usize> = (0..20).map(|_| words.by_ref().find(|&w| w < length).unwrap()).collect();
        assert_eq!(got.to_vec(), expected);
    }

    #[test]
    fn seeds_are_checked() {
        assert_eq!(check_server_seed(SEED), Ok(()));
        assert_eq!(check_server_seed(&SEED.to_uppercase()), Err(SeedError::ServerSeed));
        assert_eq!(check_server_seed(&SEED[1..]), Err(SeedError::ServerSeed));
        assert_eq!(check_client_seed("my-Seed_1"), Ok(()));
        for bad in ["", "a:b", "a b", "é", &"x".repeat(65)] {
            assert_eq!(check_client_seed(bad), Err(SeedError::ClientSeed), "{bad:?}");
        }
        assert_eq!(
            server_seed_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 of the text, as sha256sum prints it"
        );
    }

    proptest! {
        #[test]
        fn stops_are_in_range_and_repeatable(
            seed in any::<[u8; 32]>(), client in "[a-z0-9]{1,16}", nonce in any::<u64>(),
            lengths in prop::array::uniform5(1usize..500),
        ) {
            let server = server_seed_from_bytes(seed);
            let got = stops(&server, &client, nonce, lengths);
            prop_assert_eq!(got, stops(&server, &client, nonce, lengths));
            for (stop, length) in got.iter().zip(lengths) {
                prop_assert!(*stop < length);
            }
        }
    }
}
