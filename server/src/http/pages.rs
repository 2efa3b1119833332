//! The server-rendered Mini App. Pages read the jackpots through the app's
//! `JackpotFeed`, from the same once-per-period read as `GET /api/jackpots`; anything that is not a page is a static file from the
//! compiled site (`/pkg/...`, icons) or the app's own 404 page.

use app::{shell, App, JackpotFeed};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let reads = state.clone();
    let feed = JackpotFeed::new(move || {
        let reads = reads.clone();
        async move {
            reads.jackpot_lists.get(&reads.db, None).await.map_err(|error| {
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
