//! Cekpot's Telegram Mini App, written once for three builds: server-side
//! rendering (`ssr`, embedded in the server), hydration in the browser
//! (`hydrate`, the `frontend` crate) and a client-only build for static hosting
//! (`csr`, built by Trunk). It also owns the JSON shapes (`api`) that the
//! server sends and the app reads, so the two cannot drift apart.

pub mod api;
mod feed;
mod lobby;
#[cfg(any(feature = "hydrate", feature = "csr"))]
mod player;
mod slot;
#[cfg(any(feature = "hydrate", feature = "csr"))]
mod telegram;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, StaticSegment};

#[cfg(feature = "ssr")]
pub use feed::JackpotFeed;

/// The HTML document around the app, rendered only by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // Telegram's own script, vendored (no CDN at run time): it
                // reads the launch and talks to the Telegram client.
                <script src="/telegram-web-app.js"></script>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet />
        <Title text="Cekpot — live jackpots" />
        <Router>
            <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                <Route path=StaticSegment("") view=lobby::LobbyPage ssr=SsrMode::Async />
                <Route path=StaticSegment("slot") view=slot::SlotPage />
            </Routes>
        </Router>
    }
}

/// The stylesheet cargo-leptos builds into `/pkg`. Trunk injects its own copy in
/// the client-only build, so there is nothing to link then.
#[component]
fn Stylesheet() -> impl IntoView {
    #[cfg(not(feature = "csr"))]
    let link = Some(view! { <leptos_meta::Stylesheet id="cekpot" href="/pkg/cekpot.css" /> });
    #[cfg(feature = "csr")]
    let link: Option<()> = None;
    link
}
