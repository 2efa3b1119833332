//! Public jackpot data for players: pool values, unsigned, under `/api`.

use app::api::JackpotList;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::jackpot::Tier;
use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use super::extract::ApiQuery;
use crate::db;
use crate::state::AppState;

/// Most jackpots one answer lists.
pub const PAGE_SIZE_MAX: i64 = 100;

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
    let jackpots = db::jackpots::list_summaries(&state.db, query.tier, limit).await?;
    Ok(Json(JackpotList { jackpots }))
}
