//! Building the application from its settings, and serving it until told to
//! stop — then draining in-flight requests for at most the grace period.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::audit::shipper::Shipper;
use crate::cache::Redis;
use crate::config::{Environment, Settings};
use crate::engine::{Engine, Spins};
use crate::game::Game;
use crate::state::AppState;
use crate::{db, demo, http, reconciliation};

/// The name cargo-leptos gives the compiled JS and wasm (`[[workspace.metadata.leptos]] name`).
const SITE_OUTPUT_NAME: &str = "cekpot";

pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every in-flight request finished within the grace period.
    Complete,
    /// The grace period ran out with requests still in flight.
    GraceExpired,
}

impl Application {
    /// Opens the database pool, migrates, seeds demo data when configured, and
    /// binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = db::pool(&settings.database)?;
        Application::with_pool(settings, db).await
    }

    /// As [`Application::build`], with a pool the caller opened (tests point it
    /// at a per-test database, or through a proxy they can cut).
    pub async fn with_pool(settings: Settings, db: PgPool) -> anyhow::Result<Application> {
        // Install the metrics recorder before anything records.
        crate::metrics::handle();
        let currency = settings.money_currency().map_err(anyhow::Error::msg)?;
        if settings.deployment.environment == Environment::Production {
            let mut problems = settings.production_problems();
            problems.extend(db::role_problems(&db).await.context("reading the database role")?);
            anyhow::ensure!(
                problems.is_empty(),
                "deployment.environment is production, which refuses: {}",
                problems.join("; ")
            );
        }
        if settings.database.migrate_on_start {
            db::migrate(&db).await?;
        }
        if settings.demo.seed_jackpots
            && demo::seed_jackpots(&db, currency).await.context("seeding demo jackpots")?
        {
            tracing::info!("the database was empty: created three demo jackpots");
        }
        let redis = settings.redis.url.as_ref().map(Redis::open).transpose()?;
        if redis.is_none() {
            tracing::info!("no REDIS_URL: running single-instance with in-process fallbacks");
        }
        let listener = TcpListener::bind(settings.http.addr)
            .await
            .with_context(|| format!("binding {}", settings.http.addr))?;
        let leptos_options = LeptosOptions::builder()
            .output_name(SITE_OUTPUT_NAME)
            .site_root(settings.site.root.to_string_lossy().as_ref())
            .site_pkg_dir(settings.site.pkg_dir.as_str())
            .site_addr(listener.local_addr()?)
            .build();
        if settings.reconciliation.interval_s > 0 {
            reconciliation::schedule(db.clone(), Duration::from_secs(settings.reconciliation.interval_s));
        }
        match &settings.audit.bucket {
            Some(bucket) => {
                Shipper::new(db.clone(), settings.audit.clone())?.spawn();
                tracing::info!(bucket = %bucket.name, "shipping audit segments to the WORM bucket");
            }
            None => tracing::warn!("no audit.bucket configured: audit records stay in PostgreSQL only"),
        }
        let grace = settings.http.shutdown_grace();
        let engine = Engine::new(db.clone(), settings.engine.mode, settings.engine.limits());
        let nonces = crate::nonces::Nonces::new(redis.clone());
        anyhow::ensure!(
            settings.telegram.init_data_max_age_s > 0,
            "telegram.init_data_max_age_s must be positive"
        );
        let tokens = crate::http::auth::Tokens::new(&settings.auth)?;
        anyhow::ensure!(
            settings.players.demo_credit_micros >= 0,
            "players.demo_credit_micros must not be negative"
        );
        anyhow::ensure!(
            settings.players.limit_cooling_off_s >= 0,
            "players.limit_cooling_off_s must not be negative"
        );
        let game = Game::load(&settings.slot, currency)?;
        settings.service.check(&game.slot.game_id).map_err(anyhow::Error::msg)?;
        let volumes = crate::volumes::Volumes::new(redis.clone());
        let spins = Spins::start(
            db.clone(),
            engine.accounts().clone(),
            game,
            settings.players.clone(),
            settings.engine.spin_limits(),
        );
        let state = AppState {
            db,
            redis,
            engine,
            spins,
            nonces,
            volumes,
            tokens,
            settings: Arc::new(settings),
            leptos_options,
        };
        Ok(Application { listener, router: http::router(state), grace })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Drain> {
        serve(self.listener, self.router, shutdown, self.grace).await
    }
}

/// Serves until `shutdown` completes, then stops accepting connections and
/// waits up to `grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<Drain> {
    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining in-flight requests");
            stopping.notify_one();
        }
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal).into_future();
    let deadline = async move {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served.map(|()| Drain::Complete),
        () = deadline => {
            tracing::warn!("grace period over with requests still in flight");
            Ok(Drain::GraceExpired)
        }
    }
}

/// Completes on SIGTERM (orchestrators) or Ctrl-C (a terminal).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
