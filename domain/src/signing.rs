//! Request signing for the jackpot service API (`docs/SIGNING.md`): an
//! HMAC-SHA256, under the caller's secret, of a canonical string made of the
//! method, path, query, timestamp, request nonce, idempotency key and the
//! SHA-256 of the body.
//! Pure functions: the server verifies with them, the client library and the
//! load generator sign with them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The first line of every canonical string: names the scheme and its version.
pub const SCHEME: &str = "CEKPOT1-HMAC-SHA256";

/// The request headers that carry a signature.
pub const KEY_ID_HEADER: &str = "x-cekpot-key-id";
pub const TIMESTAMP_HEADER: &str = "x-cekpot-timestamp";
pub const NONCE_HEADER: &str = "x-cekpot-nonce";
pub const SIGNATURE_HEADER: &str = "x-cekpot-signature";

/// How far a request's timestamp may be from the server's clock, either way.
pub const TIMESTAMP_SKEW_MAX_SECONDS: i64 = 300;

/// What is signed of one request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Upper case, as sent: `GET`, `POST`, `PATCH`.
    pub method: &'a str,
    /// The path as sent on the request line, without the query.
    pub path: &'a str,
    /// The query string as sent, without the `?`; empty when there is none.
    pub query: &'a str,
    /// Unix time in seconds.
    pub timestamp: i64,
    pub nonce: &'a str,
    /// The `Idempotency-Key` header as sent; empty when there is none. Signed,
    /// because it decides which write a request is: a changed key would turn
    /// a retry into a second contribution.
    pub idempotency_key: &'a str,
    /// The body's bytes exactly as sent (empty for a `GET`).
    pub body: &'a [u8],
}

/// The canonical string: eight lines joined by `\n` (no trailing newline) —
/// the scheme, the method, the path, the query's `&`-separated parts sorted
/// bytewise and joined by `&` (empty parts dropped), the timestamp in decimal,
/// the nonce, the idempotency key (empty when none), and the lower-case hex
/// SHA-256 of the body.
pub fn canonical_string(request: &Request<'_>) -> String {
    let mut parts: Vec<&str> = request.query.split('&').filter(|part| !part.is_empty()).collect();
    parts.sort_unstable();
    let body_hash = hex::encode(Sha256::digest(request.body));
    format!(
        "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}\n{body_hash}",
        request.method,
        request.path,
        parts.join("&"),
        request.timestamp,
        request.nonce,
        request.idempotency_key,
    )
}

fn mac(secret: &[u8], request: &Request<'_>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(canonical_string(request).as_bytes());
    mac
}

/// The signature: lower-case hex HMAC-SHA256 of the canonical string.
pub fn sign(secret: &[u8], request: &Request<'_>) -> String {
    hex::encode(mac(secret, request).finalize().into_bytes())
}

/// Whether `signature` (hex, either case) signs `request` under `secret`. The
/// comparison takes the same time wherever the signatures differ.
pub fn verify(secret: &[u8], request: &Request<'_>, signature: &str) -> bool {
    match hex::decode(signature) {
        Ok(bytes) => mac(secret, request).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// Whether a bearer token a caller sent is `expected`, compared as HMACs of
/// each in constant time: neither the token nor its length shows in the time
/// the answer takes.
pub fn same_token(sent: &[u8], expected: &[u8]) -> bool {
    let tag = |token: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"cekpot bearer token").expect("any key length");
        mac.update(token);
        mac
    };
    tag(sent).verify_slice(&tag(expected).finalize().into_bytes()).is_ok()
}

/// A request nonce is 16 to 64 characters of `[A-Za-z0-9_-]`.
pub fn nonce_is_well_formed(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_match_only_themselves() {
        assert!(same_token(b"a-metrics-token", b"a-metrics-token"));
        for other in [&b""[..], b"a-metrics-toke", b"a-metrics-tokenx", b"A-metrics-token"] {
            assert!(!same_token(other, b"a-metrics-token"), "{other:?}");
        }
    }

    const SECRET: &[u8] = b"cekpot-test-secret-0001";
    const CONTRIBUTION: &[u8] =
        br#"{"gameId":"cekpot-slot","playerId":"player-42","betAmount":"2.50","currency":"EUR"}"#;

    /// The vectors of docs/SIGNING.md, computed independently with Python's
    /// `hmac` and `hashlib` (the snippet is in the document).
    #[test]
    fn the_documented_vectors_hold() {
        let vectors = [
            (
                Request {
                    method: "GET",
                    path: "/jackpot/cekpot-mega",
                    query: "",
                    timestamp: 1_763_700_000,
                    nonce: "5f2b8c1e9a7d4e30",
                    idempotency_key: "",
                    body: b"",
                },
                "24a0f25c5053b99e5de19a96a551a5d81120f74612f86cb1f9d2bdd91a3ce948",
            ),
            (vectors_contribution(), "5877a826116395e6695e807518226d99fe94c9fff87ff787064973a45deffcbd"),
            (vectors_query(), "ed4a6c746964612f229700e7186c90a59c5e1aabb6bfa7c144a05761f3bb74f9"),
        ];
        for (request, signature) in vectors {
            assert_eq!(sign(SECRET, &request), signature, "{}", canonical_string(&request));
            assert!(verify(SECRET, &request, signature));
            assert!(verify(SECRET, &request, &signature.to_uppercase()));
        }
        assert_eq!(
            canonical_string(&vectors_query()),
            "CEKPOT1-HMAC-SHA256\nGET\n/jackpots\nlimit=10&tier=mega\n1763700000\n0123456789abcdef\n\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The third vector: a query whose parts the canonical string sorts.
    fn vectors_query() -> Request<'static> {
        Request {
            method: "GET",
            path: "/jackpots",
            query: "tier=mega&limit=10",
            timestamp: 1_763_700_000,
            nonce: "0123456789abcdef",
            idempotency_key: "",
            body: b"",
        }
    }

    /// The second vector: a contribution with its body.
    fn vectors_contribution() -> Request<'static> {
        Request {
            method: "POST",
            path: "/jackpot/cekpot-mega/contribute",
            query: "",
            timestamp: 1_763_700_000,
            nonce: "a1b2c3d4e5f60718",
            idempotency_key: "round-8812-bet-1",
            body: CONTRIBUTION,
        }
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        let request = vectors_contribution();
        let signature = sign(SECRET, &request);
        let tampered_body =
            CONTRIBUTION.iter().map(|&b| if b == b'2' { b'9' } else { b }).collect::<Vec<u8>>();
        let changes = [
            Request { method: "PATCH", ..request },
            Request { path: "/jackpot/caspian-shared/contribute", ..request },
            Request { query: "x=1", ..request },
            Request { timestamp: 1_763_700_001, ..request },
            Request { nonce: "a1b2c3d4e5f60719", ..request },
            Request { idempotency_key: "round-8812-bet-2", ..request },
            Request { idempotency_key: "", ..request },
            Request { body: &tampered_body, ..request },
        ];
        for changed in changes {
            assert!(!verify(SECRET, &changed, &signature), "{changed:?}");
        }
        assert!(!verify(b"another-secret", &request, &signature));
        assert!(!verify(SECRET, &request, "not hex"));
        assert!(!verify(SECRET, &request, &signature[..62]));
    }

    #[test]
    fn query_order_does_not_matter_but_its_content_does() {
        let base = vectors_query();
        let reordered = Request { query: "limit=10&tier=mega", ..base };
        let doubled_ampersand = Request { query: "limit=10&&tier=mega&", ..base };
        assert_eq!(canonical_string(&base), canonical_string(&reordered));
        assert_eq!(canonical_string(&base), canonical_string(&doubled_ampersand));
        assert_ne!(
            canonical_string(&base),
            canonical_string(&Request { query: "limit=11&tier=mega", ..base })
        );
    }

    #[test]
    fn nonces_are_plain_and_long_enough() {
        assert!(nonce_is_well_formed("0123456789abcdef"));
        assert!(nonce_is_well_formed(&"a-_Z".repeat(16)));
        for bad in ["short", "0123456789abcde", "0123456789abcdef!", "space in the nonce!", &"a".repeat(65)] {
            assert!(!nonce_is_well_formed(bad), "{bad}");
        }
    }
}
