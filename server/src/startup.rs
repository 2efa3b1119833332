//! Building the application from its settings, and serving it until told to
//! stop — then draining in-flight requests for at most the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::audit::shipper::Shipper;
use crate::cache::Redis;
use crate::config::{Environment, Settings};
use crate::engine::{Engine, Spins};
use crate::game::Game;
use crate::state::{AppState, Shared};
use crate::{db, demo, http, reconciliation};

/// The name cargo-leptos gives the compiled JS and wasm (`[[workspace.metadata.leptos]] name`).
const SITE_OUTPUT_NAME: &str = "cekpot";

pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    header_read_timeout: Duration,
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
        let public_cache = Duration::from_millis(settings.http.public_cache_ms);
        let header_read_timeout = Duration::from_millis(settings.http.header_read_timeout_ms);
        let engine = Engine::new(db.clone(), settings.engine.mode, settings.engine.limits());
        let nonces = crate::nonces::Nonces::new(redis.clone());
        anyhow::ensure!(
            (1..=crate::config::INIT_DATA_MAX_AGE_S_MAX).contains(&settings.telegram.init_data_max_age_s),
            "telegram.init_data_max_age_s is {}; a launch's initData is accepted for 1 to {} seconds",
            settings.telegram.init_data_max_age_s,
            crate::config::INIT_DATA_MAX_AGE_S_MAX
        );
        anyhow::ensure!(
            (1..=domain::jackpot::BATCH_BETS_MAX).contains(&settings.engine.batch_size_max),
            "engine.batch_size_max is {}; a batch writes 1 to {} contributions",
            settings.engine.batch_size_max,
            domain::jackpot::BATCH_BETS_MAX
        );
        anyhow::ensure!(
            (1..=settings.http.request_timeout_ms).contains(&settings.engine.queue_deadline_ms),
            "engine.queue_deadline_ms is {}; it must be 1 to http.request_timeout_ms ({}), so a caller is told \
             its request was not applied before its own time-out",
            settings.engine.queue_deadline_ms,
            settings.http.request_timeout_ms
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
        let rates = crate::rates::Rates::new(
            redis.clone(),
            Duration::from_secs(settings.http.rate_window_s),
            settings.http.ip_requests_per_window,
            settings.players.requests_per_window,
        );
        let spins = Spins::start(
            db.clone(),
            engine.accounts().clone(),
            game,
            settings.players.clone(),
            settings.engine.spin_limits(),
        );
        let state = AppState::new(Shared {
            db,
            redis,
            engine,
            spins,
            nonces,
            volumes,
            rates,
            tokens,
            jackpot_lists: Arc::new(http::jackpots::Lists::new(public_cache)),
            readiness: Arc::new(http::health::Readiness::new(public_cache)),
            settings: Arc::new(settings),
            leptos_options,
        });
        Ok(Application { listener, router: http::router(state), grace, header_read_timeout })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Drain> {
        serve(self.listener, self.router, shutdown, self.grace, self.header_read_timeout).await
    }
}

/// Serves until `shutdown` completes, then stops accepting connections and
/// waits up to `grace` for in-flight requests. A connection whose request
/// headers have not all arrived within `header_read_timeout` is closed (hyper's
/// HTTP/1 header timer, which plain `axum::serve` does not set): a slowloris
/// client holds no socket for long.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<Drain> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: wait, do not spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Handlers see the peer's address (`ConnectInfo`), as with axum::serve.
                let service = tower::util::MapRequest::new(router.clone(), move |mut request: axum::http::Request<_>| {
                    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    request
                });
                let service = TowerToHyperService::new(service);
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "a connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => Ok(Drain::Complete),
        () = tokio::time::sleep(grace) => {
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
