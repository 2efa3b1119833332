//! Players' refresh tokens: `<session>.<generation>.<mac>`, where the MAC
//! (HMAC-SHA-256, hex) binds the session id and generation to the server's
//! key. The server keeps only each session's current generation: a token of
//! that generation renews the session (and the next token has the next
//! generation); a token of an earlier one is a spent token presented again,
//! and ends the session. Forging either number needs the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longer input is refused unread.
pub const REFRESH_TOKEN_LENGTH_MAX: usize = 128;

/// What a genuine refresh token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshToken {
    pub session: i64,
    pub generation: i64,
}

/// Signs and reads refresh tokens with one key.
#[derive(Clone)]
pub struct RefreshKey(Hmac<Sha256>);

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(..)")
    }
}

impl RefreshKey {
    /// The key for refresh tokens, derived from `secret` (the token signing
    /// secret) under its own label, so it signs nothing else.
    pub fn derive(secret: &[u8]) -> RefreshKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"cekpot refresh tokens v1");
        let key = mac.finalize().into_bytes();
        RefreshKey(Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"))
    }

    fn mac(&self, token: RefreshToken) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(format!("{}.{}", token.session, token.generation).as_bytes());
        mac
    }

    pub fn sign(&self, token: RefreshToken) -> String {
        let mac = hex::encode(self.mac(token).finalize().into_bytes());
        format!("{}.{}.{mac}", token.session, token.generation)
    }

    /// What `text` names, if this key signed it; `None` for anything else.
    pub fn read(&self, text: &str) -> Option<RefreshToken> {
        if text.len() > REFRESH_TOKEN_LENGTH_MAX {
            return None;
        }
        let mut parts = text.split('.');
        let (session, generation, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let lower_hex = mac.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if parts.next().is_some() || mac.len() != 64 || !lower_hex {
            return None;
        }
        let number = |part: &str| -> Option<i64> {
            // Canonical decimal only: one token, one spelling.
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            canonical.then(|| part.parse().ok()).flatten()
        };
        let token = RefreshToken { session: number(session)?, generation: number(generation)? };
        let mut expected = [0u8; 32];
        hex::decode_to_slice(mac, &mut expected).ok()?;
        self.mac(token).verify_slice(&expected).ok()?;
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> RefreshKey {
        RefreshKey::derive(b"a-test-secret-of-at-least-32-bytes!!")
    }

    #[test]
    fn a_signed_token_reads_back_and_only_with_its_key() {
        let token = RefreshToken { session: 42, generation: 7 };
        let text = key().sign(token);
        assert!(text.starts_with("42.7."), "{text}");
        assert_eq!(key().read(&text), Some(token));
        assert_eq!(RefreshKey::derive(b"another secret of at least 32 bytes").read(&text), None);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = key().sign(RefreshToken { session: 1, generation: 0 });
        let mac = good.rsplit_once('.').unwrap().1;
        for bad in [
            String::new(),
            "1.0".into(),
            format!("1.0.{mac}.x"),
            format!("01.0.{mac}"),
            format!("+1.0.{mac}"),
            format!("1.-0.{mac}"),
            format!("1.0.{}", &mac[..63]),
            format!("1.0.{}", mac.to_uppercase()),
            format!("2.0.{mac}"),
            format!("1.1.{mac}"),
            format!("99999999999999999999.0.{mac}"),
            "9".repeat(REFRESH_TOKEN_LENGTH_MAX + 1),
        ] {
            assert_eq!(key().read(&bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_token_round_trips(session in 0..i64::MAX, generation in 0..i64::MAX) {
            let token = RefreshToken { session, generation };
            let text = key().sign(token);
            prop_assert!(text.len() <= REFRESH_TOKEN_LENGTH_MAX);
            prop_assert_eq!(key().read(&text), Some(token));
        }

        #[test]
        fn changing_any_character_of_a_token_is_refused(
            session in 0..1_000_000i64, generation in 0..1_000i64, at in 0usize..200, to in 0u8..128,
        ) {
            let text = key().sign(RefreshToken { session, generation });
            let at = at % text.len();
            let mut bytes = text.clone().into_bytes();
            prop_assume!(bytes[at] != to && to.is_ascii());
            bytes[at] = to;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(key().read(&changed), None, "{}", changed);
        }
    }
}
