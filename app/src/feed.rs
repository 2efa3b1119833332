//! Where the lobby's jackpots come from. On the server, straight from the
//! database through a [`JackpotFeed`] that the server provides as context; in the
//! browser, from `GET /api/jackpots`. With server rendering the browser never
//! asks on first load: the rendered page carries the data it hydrates from.

use crate::api::JackpotSummary;

pub type FeedResult = Result<Vec<JackpotSummary>, String>;

#[cfg(not(any(feature = "ssr", feature = "hydrate", feature = "csr")))]
compile_error!("enable exactly one of the features `ssr`, `hydrate` or `csr` on the `app` crate");

#[cfg(feature = "ssr")]
pub use ssr::{load_jackpots, JackpotFeed};

#[cfg(all(not(feature = "ssr"), any(feature = "hydrate", feature = "csr")))]
pub use client::load_jackpots;

#[cfg(feature = "ssr")]
mod ssr {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use super::FeedResult;

    type FeedFuture = Pin<Box<dyn Future<Output = FeedResult> + Send>>;

    /// The server's source of lobby data, provided as Leptos context.
    #[derive(Clone)]
    pub struct JackpotFeed(Arc<dyn Fn() -> FeedFuture + Send + Sync>);

    impl JackpotFeed {
        pub fn new<F, Fut>(load: F) -> Self
        where
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: Future<Output = FeedResult> + Send + 'static,
        {
            JackpotFeed(Arc::new(move || Box::pin(load())))
        }
    }

    pub fn load_jackpots() -> impl Future<Output = FeedResult> + Send {
        // Context is read now, while the reactive owner is current, not inside
        // the future.
        let feed = leptos::prelude::use_context::<JackpotFeed>();
        async move {
            match feed {
                Some(feed) => (feed.0)().await,
                None => Err("the server provided no jackpot feed".to_owned()),
            }
        }
    }
}

#[cfg(all(not(feature = "ssr"), any(feature = "hydrate", feature = "csr")))]
mod client {
    use std::future::Future;

    use super::FeedResult;
    use crate::api::JackpotList;

    pub fn load_jackpots() -> impl Future<Output = FeedResult> + Send {
        // Browser futures are not `Send`; the wrapper is sound because the
        // browser runs them on its only thread.
        send_wrapper::SendWrapper::new(async move {
            let response = gloo_net::http::Request::get("/api/jackpots")
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if !response.ok() {
                return Err(format!("the server answered {}", response.status()));
            }
            let list: JackpotList = response.json().await.map_err(|error| error.to_string())?;
            Ok(list.jackpots)
        })
    }
}
