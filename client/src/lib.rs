//! A client for Cekpot's jackpot service API: every request signed as
//! `docs/SIGNING.md` describes (key id, timestamp, request nonce, HMAC-SHA256
//! over method, path, query, timestamp, nonce and the body's SHA-256).
//!
//! ```no_run
//! # async fn example() -> Result<(), reqwest::Error> {
//! let signer = cekpot_client::Signer::new("provider-a-2026", b"the secret from your onboarding".to_vec());
//! let client = cekpot_client::Client::new("http://127.0.0.1:3000", signer);
//! let body = serde_json::json!({
//!     "gameId": "cekpot-slot", "playerId": "player-42", "betAmount": "2.50", "currency": "EUR"
//! });
//! let response = client.post("/jackpot/cekpot-mega/contribute", &body, "round-8812-bet-1").await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use domain::signing::{self, Request};
use reqwest::Method;
use serde::Serialize;

pub use domain::signing::{KEY_ID_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// A key id and its secret. `Debug` shows the key id only.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).field("secret", &"[redacted]").finish()
    }
}

impl Signer {
    pub fn new(key_id: impl Into<String>, secret: Vec<u8>) -> Signer {
        Signer { key_id: key_id.into(), secret }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The four signature headers for a request, at a given time and nonce:
    /// `path_and_query` is the request target as sent (`/jackpots?tier=mega`),
    /// `idempotency_key` the `Idempotency-Key` header it carries ("" if none).
    pub fn headers_at(
        &self,
        method: &str,
        path_and_query: &str,
        idempotency_key: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> [(&'static str, String); 4] {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let request = Request { method, path, query, timestamp, nonce, idempotency_key, body };
        [
            (KEY_ID_HEADER, self.key_id.clone()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (NONCE_HEADER, nonce.to_owned()),
            (SIGNATURE_HEADER, signing::sign(&self.secret, &request)),
        ]
    }

    /// The signature headers for a request sent now, with a fresh random nonce.
    pub fn headers(
        &self,
        method: &str,
        path_and_query: &str,
        idempotency_key: &str,
        body: &[u8],
    ) -> [(&'static str, String); 4] {
        self.headers_at(method, path_and_query, idempotency_key, body, unix_now(), &fresh_nonce())
    }
}

/// Seconds since the Unix epoch by this machine's clock.
pub fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds since 1970 fit in an i64")
}

/// 32 hex characters from the operating system's CSPRNG.
pub fn fresh_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    hex::encode(bytes)
}

/// Sends signed requests to one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    signer: Signer,
}

impl Client {
    /// `base` is the server's origin, e.g. `http://127.0.0.1:3000`.
    pub fn new(base: impl Into<String>, signer: Signer) -> Client {
        Client::with_http(reqwest::Client::new(), base, signer)
    }

    /// The same with a `reqwest::Client` of the caller's (pool size, time-outs).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>, signer: Signer) -> Client {
        Client { http, base: base.into().trim_end_matches('/').to_owned(), signer }
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Result<reqwest::Response> {
        self.send(Method::GET, path_and_query, None, None).await
    }

    /// A JSON write with its `Idempotency-Key`.
    pub async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
        idempotency_key: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let bytes = serde_json::to_vec(body).expect("a Serialize value serializes to JSON");
        self.send(Method::POST, path, Some(bytes), Some(idempotency_key)).await
    }

    /// A JSON `PATCH` (configuration changes).
    pub async fn patch(&self, path: &str, body: &impl Serialize) -> reqwest::Result<reqwest::Response> {
        let bytes = serde_json::to_vec(body).expect("a Serialize value serializes to JSON");
        self.send(Method::PATCH, path, Some(bytes), None).await
    }

    /// Any request: `body` is sent as `application/json` exactly as given.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let body = body.unwrap_or_default();
        let mut request = self.http.request(method.clone(), format!("{}{path_and_query}", self.base));
        let key = idempotency_key.unwrap_or("");
        for (name, value) in self.signer.headers(method.as_str(), path_and_query, key, &body) {
            request = request.header(name, value);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        request.send().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_the_query_from_the_path_and_sign_it() {
        let signer = Signer::new("k-1", b"cekpot-test-secret-0001".to_vec());
        let headers = signer.headers_at(
            "GET",
            "/jackpots?tier=mega&limit=10",
            "",
            b"",
            1_763_700_000,
            "0123456789abcdef",
        );
        assert_eq!(headers[0], (KEY_ID_HEADER, "k-1".to_owned()));
        assert_eq!(headers[1], (TIMESTAMP_HEADER, "1763700000".to_owned()));
        assert_eq!(headers[2], (NONCE_HEADER, "0123456789abcdef".to_owned()));
        // The third vector of docs/SIGNING.md.
        assert_eq!(
            headers[3],
            (SIGNATURE_HEADER, "ed4a6c746964612f229700e7186c90a59c5e1aabb6bfa7c144a05761f3bb74f9".to_owned())
        );
    }

    #[test]
    fn nonces_are_fresh_and_well_formed() {
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert_ne!(a, b);
        assert!(domain::signing::nonce_is_well_formed(&a), "{a}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let signer = Signer::new("k-1", b"very-secret".to_vec());
        let shown = format!("{signer:?}");
        assert!(shown.contains("k-1") && !shown.contains("very-secret"), "{shown}");
    }
}
