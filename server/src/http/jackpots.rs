//! Public jackpot data for players: pool values, unsigned, under `/api`.

use std::sync::Arc;
use std::time::Duration;

use app::api::{JackpotList, JackpotSummary};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::jackpot::{Progress, Tier};
use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use super::extract::ApiQuery;
use crate::db;
use crate::recent::Recent;
use crate::state::AppState;

/// Most jackpots one answer lists.
pub const PAGE_SIZE_MAX: i64 = 100;

/// The jackpot lists players read (the lobby, `GET /api/jackpots`), one per
/// tier filter, each read from the database at most once per
/// `http.public_cache_ms` ([`Recent`]).
pub struct Lists {
    by_tier: [Recent<Vec<JackpotSummary>, Arc<sqlx::Error>>; 4],
}

impl Lists {
    pub fn new(max_age: Duration) -> Lists {
        Lists { by_tier: std::array::from_fn(|_| Recent::new(max_age)) }
    }

    /// Up to [`PAGE_SIZE_MAX`] jackpots of `tier` (all tiers when `None`).
    pub async fn get(
        &self,
        db: &sqlx::PgPool,
        tier: Option<Tier>,
    ) -> Result<Vec<JackpotSummary>, Arc<sqlx::Error>> {
        let slot = match tier {
            None => 0,
            Some(Tier::Local) => 1,
            Some(Tier::Shared) => 2,
            Some(Tier::Mega) => 3,
        };
        self.by_tier[slot]
            .get(|| async {
                let rows = db::jackpots::list_summaries(db, tier, PAGE_SIZE_MAX).await.map_err(Arc::new)?;
                Ok(rows.into_iter().map(summary).collect())
            })
            .await
    }
}

/// A listed jackpot on the wire, with its progress towards the maximum.
fn summary(row: db::jackpots::Summary) -> JackpotSummary {
    JackpotSummary {
        progress_bp: Progress::of(row.value, row.max_value),
        id: row.id,
        name: row.name,
        tier: row.tier,
        currency: row.currency,
        value: row.value,
        seed: row.seed,
        max_value: row.max_value,
        cycle: row.cycle,
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/jackpots", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    tier: Option<Tier>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<JackpotList>, ApiError> {
    let limit = query.limit.unwrap_or(PAGE_SIZE_MAX);
    if !(1..=PAGE_SIZE_MAX).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`limit` must be between 1 and {PAGE_SIZE_MAX}"),
        ));
    }
    let mut jackpots = state.jackpot_lists.get(&state.db, query.tier).await?;
    jackpots.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(Json(JackpotList { jackpots }))
}
