//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use crate::cache::Redis;
use crate::config::Settings;
use crate::engine::Engine;
use crate::http::auth::Tokens;
use crate::nonces::Nonces;

/// Cloned for every request (each `State` extractor and state-holding
/// middleware takes its own): one shared allocation, so a clone is one
/// reference count, not a copy of the keys, the game and the settings.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub db: PgPool,
    pub redis: Option<Redis>,
    pub engine: Engine,
    /// The slot's spins (their own group commit).
    pub spins: crate::engine::Spins,
    /// Request nonces of signed service requests (Redis, or this process).
    pub nonces: Nonces,
    /// Each service key's bets of the day (Redis, or this process).
    pub volumes: crate::volumes::Volumes,
    /// Request rates per client address and per player.
    pub rates: crate::rates::Rates,
    /// Players' session tokens.
    pub tokens: Tokens,
    /// The jackpot lists players read, at most once per `http.public_cache_ms`.
    pub jackpot_lists: Arc<crate::http::jackpots::Lists>,
    /// `/readyz`'s checks, at most once per `http.public_cache_ms`.
    pub readiness: Arc<crate::http::health::Readiness>,
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}
