//! Liveness and readiness for load balancers and orchestrators, and the
//! Prometheus metrics.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 while
//! PostgreSQL answers within a short time-out: players need nothing else. A
//! configured Redis that does not answer makes it `degraded`, still 200 — the
//! signed service API refuses calls meanwhile (it fails closed without the
//! shared nonce record), everything else goes on.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::error::{ApiError, ErrorCode};

use crate::recent::Recent;
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Prometheus' text format; see [`crate::metrics`] for what is there. Only
/// for `Authorization: Bearer <http.metrics_token>` when one is set.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = &state.settings.http.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !domain::signing::same_token(sent.as_bytes(), token.expose_secret().as_bytes()) {
            return Err(ApiError::new(
                ErrorCode::MetricsTokenRequired,
                "send `Authorization: Bearer <http.metrics_token>` to read the metrics",
            ));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::handle().render(),
    ))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    Down,
    NotConfigured,
}

#[derive(Serialize)]
struct ReadinessBody {
    status: &'static str,
    postgres: Check,
    redis: Check,
}

/// The checks of PostgreSQL and Redis, run at most once per
/// `http.public_cache_ms` however often probes (or anyone) ask.
pub struct Readiness(Recent<(Check, Check), std::convert::Infallible>);

impl Readiness {
    pub fn new(max_age: std::time::Duration) -> Readiness {
        Readiness(Recent::new(max_age))
    }
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessBody>) {
    let checks = state
        .readiness
        .0
        .get(|| async { Ok(tokio::join!(check_postgres(&state), check_redis(&state))) })
        .await;
    let Ok((postgres, redis)) = checks;
    let (code, status) = match (postgres, redis) {
        (Check::Ok, Check::Down) => (StatusCode::OK, "degraded"),
        (Check::Ok, _) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    };
    (code, Json(ReadinessBody { status, postgres, redis }))
}

async fn check_postgres(state: &AppState) -> Check {
    let probe = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.db);
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(1)) => Check::Ok,
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => Check::Down,
    }
}

async fn check_redis(state: &AppState) -> Check {
    let Some(redis) = &state.redis else {
        return Check::NotConfigured;
    };
    match tokio::time::timeout(CHECK_TIMEOUT, redis.ping()).await {
        Ok(Ok(())) => Check::Ok,
        Ok(Err(_)) | Err(_) => Check::Down,
    }
}
