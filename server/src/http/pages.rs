//! The server-rendered Mini App. Pages read the database directly through the
//! app's `JackpotFeed`; anything that is not a page is a static file from the
//! compiled site (`/pkg/...`, icons) or the app's own 404 page.

use app::{shell, App, JackpotFeed};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use super::jackpots::PAGE_SIZE_MAX;
use crate::db;
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let pool = state.db.clone();
    let feed = JackpotFeed::new(move || {
        let pool = pool.clone();
        async move {
            db::jackpots::list_summaries(&pool, None, PAGE_SIZE_MAX).await.map_err(|error| {
                tracing::error!(%error, "loading the lobby's jackpots");
                "the jackpots are temporarily unavailable".to_owned()
            })
        }
    });
    let options = state.leptos_options.clone();
    Router::new()
        .leptos_routes_with_context(
            state,
            generate_route_list(App),
            move || provide_context(feed.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
}
