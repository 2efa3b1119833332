//! Operator endpoints. (Signed requests and the `admin` role guard them once
//! the service API is signed.)

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::error::ApiError;
use crate::reconciliation::{self, Report, Trigger};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/reconciliations", post(reconcile))
}

/// Runs a reconciliation now and answers its report.
async fn reconcile(State(state): State<AppState>) -> Result<Json<Report>, ApiError> {
    Ok(Json(reconciliation::run(&state.db, Trigger::Admin).await?))
}
