//! The jackpot service API's guard (`docs/SIGNING.md`): every request to
//! `/jackpots`, `/jackpot/...` and `/admin/...` must be signed by a configured
//! key, be fresh (±300 s), use its request nonce once — on any instance — and
//! fall within the key's role. Each refusal has its own code.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use domain::ids::ProviderId;
use domain::signing::{self, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TIMESTAMP_SKEW_MAX_SECONDS};
use secrecy::ExposeSecret;

use super::error::{ApiError, ErrorCode};
use crate::audit::Actor;
use crate::config::Role;
use crate::state::AppState;

/// What a request naming an unknown key id is checked against, so it takes
/// the same work as a known key's; no signature can match it and pass, since
/// it is refused whatever the outcome.
const UNKNOWN_KEY_SECRET: &[u8] = b"no key has this secret: the key id is unknown";

/// Who sent a verified request; handlers take it as an `Extension`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
    /// The key's provider: its requests' namespace.
    pub provider: ProviderId,
    /// The key's place in `service.keys`: what it may touch.
    pub key_index: usize,
    /// The request's `x-request-id` (set by the middleware when the client sent none).
    pub request_id: Option<String>,
}

impl Caller {
    /// The namespace of the caller's idempotency keys and players.
    pub fn origin(&self) -> crate::engine::Origin {
        crate::engine::Origin::Provider(self.provider.clone())
    }

    /// The caller as the audit trail records it.
    pub fn actor(&self) -> Actor {
        Actor::new(self.key_id.clone(), self.request_id.clone())
    }
}

pub async fn verify(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    let missing = || {
        ApiError::new(
            ErrorCode::MissingSignature,
            "sign every service request with X-Cekpot-Key-Id, X-Cekpot-Timestamp, X-Cekpot-Nonce and \
             X-Cekpot-Signature (docs/SIGNING.md)",
        )
    };
    let (Some(key_id), Some(timestamp), Some(nonce), Some(signature)) = (
        header(signing::KEY_ID_HEADER),
        header(TIMESTAMP_HEADER),
        header(NONCE_HEADER),
        header(SIGNATURE_HEADER),
    ) else {
        return Err(missing());
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| missing())?;
    if !signing::nonce_is_well_formed(nonce) {
        return Err(missing());
    }
    // An unknown key id is answered as a bad signature, after the same work:
    // a caller cannot tell which key ids exist.
    let found = state.settings.service.keys.iter().enumerate().find(|(_, key)| key.id == key_id);
    let key = found.map(|(_, key)| key);
    let skew = chrono::Utc::now().timestamp().abs_diff(timestamp);
    if skew > TIMESTAMP_SKEW_MAX_SECONDS.unsigned_abs() {
        return Err(ApiError::new(
            ErrorCode::StaleTimestamp,
            format!(
                "the timestamp is {skew} s from the server's clock; at most {TIMESTAMP_SKEW_MAX_SECONDS} s"
            ),
        ));
    }
    let body = axum::body::to_bytes(body, state.settings.http.body_limit_bytes).await.map_err(|_| {
        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than this server accepts")
    })?;
    let signed = signing::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        timestamp,
        nonce,
        idempotency_key: header("idempotency-key").unwrap_or(""),
        body: &body,
    };
    let secret = key.map_or(UNKNOWN_KEY_SECRET, |key| key.secret.expose_secret().as_bytes());
    let verified = signing::verify(secret, &signed, signature);
    let Some(key) = key.filter(|_| verified) else {
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            "the signature does not match the request, or the key id is not an active key's",
        ));
    };
    match state.nonces.first_use(&key.id, nonce).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::new(ErrorCode::ReplayedNonce, "this request nonce was used before"));
        }
        // Without the shared record a replay could pass: refuse, retry later.
        Err(error) => return Err(ApiError::unavailable(error)),
    }
    if !allows(key.role, &parts.method, parts.uri.path()) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "the key's role ({}) does not allow {} {}",
                key.role.as_str(),
                parts.method,
                parts.uri.path()
            ),
        ));
    }
    // Bounded by the middleware (`http::is_request_id`) before it got here.
    let request_id = header("x-request-id").map(str::to_owned);
    // Checked at start-up (`ServiceSettings::check`).
    let provider = key.provider().map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let key_index = found.map_or(0, |(index, _)| index);
    let caller = Caller { key_id: key.id.clone(), role: key.role, provider, key_index, request_id };
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// The role table: `readonly` reads; `game_service` also contributes and
/// awards; `admin` may do everything, `/admin/...` included.
pub fn allows(role: Role, method: &Method, path: &str) -> bool {
    let admin_path = path.starts_with("/admin/");
    let provider_write = *method == Method::POST
        && path.starts_with("/jackpot/")
        && (path.ends_with("/contribute") || path.ends_with("/award"));
    match role {
        Role::Admin => true,
        Role::GameService => !admin_path && (*method == Method::GET || provider_write),
        Role::Readonly => !admin_path && *method == Method::GET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table() {
        let routes = [
            (Method::GET, "/jackpots", [true, true, true]),
            (Method::GET, "/jackpot/cekpot-mega", [true, true, true]),
            (Method::POST, "/jackpot/cekpot-mega/contribute", [false, true, true]),
            (Method::POST, "/jackpot/cekpot-mega/award", [false, true, true]),
            (Method::POST, "/admin/reconciliations", [false, false, true]),
            (Method::PATCH, "/admin/jackpots/cekpot-mega", [false, false, true]),
            (Method::POST, "/admin/awards/1/rollback", [false, false, true]),
        ];
        for (method, path, expected) in routes {
            let got =
                [Role::Readonly, Role::GameService, Role::Admin].map(|role| allows(role, &method, path));
            assert_eq!(got, expected, "{method} {path}");
        }
    }
}
