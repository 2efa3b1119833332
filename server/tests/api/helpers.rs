//! `spawn_app()` and the other tools the tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use figment::providers::{Format, Toml};
use figment::Figment;
use server::config::{Role, ServiceKey, Settings, DEFAULTS};
use server::startup::Application;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// A client of a server running elsewhere (a binary the test started).
    pub fn at(address: &str) -> TestApp {
        TestApp { address: address.to_owned(), client: reqwest::Client::new(), stop: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("the server answers")
    }

    /// A client of the service API that signs with one of [`TEST_KEYS`].
    pub fn service(&self, key_id: &str) -> cekpot_client::Client {
        service_client(&self.address, key_id)
    }
}

/// The service keys every test server has: (key id, role); each secret is
/// [`test_secret`]`(key id)`.
pub const TEST_KEYS: [(&str, Role); 3] =
    [("test-admin", Role::Admin), ("test-game", Role::GameService), ("test-readonly", Role::Readonly)];

/// `TEST_KEYS` as `CEKPOT_SERVICE__KEYS` spells them, for a server binary.
pub fn test_keys_env() -> String {
    let keys: Vec<String> = TEST_KEYS
        .iter()
        .map(|(id, role)| {
            let role = serde_json::to_value(role).unwrap();
            format!(
                "{{id=\"{id}\",secret=\"{}\",role={role},games={},jackpots={}}}",
                test_secret(id),
                serde_json::to_string(&TEST_GAMES).unwrap(),
                serde_json::to_string(&TEST_JACKPOTS).unwrap()
            )
        })
        .collect();
    format!("[{}]", keys.join(","))
}

/// The games and jackpots every test key may touch: each a test uses.
pub const TEST_GAMES: [&str; 8] =
    ["test-slot", "any-game", "provider-slot", "slot-1", "caspian-reels", "p-1", "test-game", "42"];
pub const TEST_JACKPOTS: [&str; 10] = [
    "cekpot-mega",
    "caspian-shared",
    "lucky-sevens",
    "provider-pot",
    "quick-drop",
    "shared-pot",
    "storm",
    "tiny-drop",
    "no-such-jackpot",
    "nope",
];

/// A test key's secret: long enough for production's check.
pub fn test_secret(key_id: &str) -> String {
    format!("{key_id}-secret-for-tests-only-32-bytes")
}

/// What production requires and every test server has: a JWT secret, and
/// one instance without Redis (tests that need Redis set its URL).
pub const TEST_JWT_SECRET: &str = "a-test-jwt-secret-of-at-least-32-bytes";

/// The `/metrics` token every test server has (production requires one).
pub const TEST_METRICS_TOKEN: &str = "a-test-metrics-token";

/// A signing client for the server at `base` (`http://127.0.0.1:port`).
pub fn service_client(base: &str, key_id: &str) -> cekpot_client::Client {
    let signer = cekpot_client::Signer::new(key_id, test_secret(key_id).into_bytes());
    cekpot_client::Client::new(base, signer)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings as a fresh installation has them, on a free port, quiet.
pub fn test_settings() -> Settings {
    let mut settings =
        Settings::from_figment(Figment::new().merge(Toml::string(DEFAULTS))).expect("the defaults parse");
    settings.http.addr = "127.0.0.1:0".parse().unwrap();
    settings.http.shutdown_grace_ms = 1_000;
    settings.database.migrate_on_start = false; // #[sqlx::test] has migrated
                                                // Production's start-up checks refuse the run's superuser and a missing
                                                // bucket; the tests that are about them start the real binary in
                                                // production (security.rs). Nothing else differs between the two.
    settings.deployment.environment = server::config::Environment::Development;
    settings.auth.jwt_secret = Some(TEST_JWT_SECRET.to_owned().into());
    settings.deployment.single_instance = true;
    // Every test client is 127.0.0.1, and some send thousands of requests;
    // the rate tests set their own limits.
    settings.http.ip_requests_per_window = 1_000_000;
    settings.players.requests_per_window = 1_000_000;
    settings.http.metrics_token = Some(TEST_METRICS_TOKEN.to_owned().into());
    settings.service.keys = TEST_KEYS
        .iter()
        .map(|(id, role)| ServiceKey {
            id: (*id).into(),
            secret: test_secret(id).into(),
            role: *role,
            provider: None,
            games: TEST_GAMES.map(String::from).to_vec(),
            jackpots: TEST_JACKPOTS.map(String::from).to_vec(),
            bet_max_micros: 1_000_000_000_000,
            daily_volume_max_micros: 1_000_000_000_000_000,
        })
        .collect();
    settings
}

/// The Redis the test run provides (`make test` sets `REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

pub async fn spawn_app_with(pool: PgPool, customize: impl FnOnce(&mut Settings)) -> TestApp {
    // The server's warnings and errors, shown with a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let mut settings = test_settings();
    customize(&mut settings);
    let application = Application::with_pool(settings, pool).await.expect("the application builds");
    let address = format!("http://{}", application.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { address, client, stop: Some(stop) }
}

/// A TCP proxy in front of PostgreSQL that a test can cut, as if the database
/// went away (connections refused) or stopped answering (connections held,
/// nothing relayed), and restore.
pub struct DatabaseProxy {
    pub address: SocketAddr,
    up: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl DatabaseProxy {
    pub async fn start(upstream: SocketAddr) -> DatabaseProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let hanging = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (accept_up, accept_hanging, accept_connections, accept_held) =
            (up.clone(), hanging.clone(), connections.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if accept_hanging.load(Ordering::SeqCst) {
                    accept_held.lock().unwrap().push(client); // accepted, never answered
                    continue;
                }
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client); // refused, as a stopped server would
                    continue;
                }
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                accept_connections.lock().unwrap().push(relay);
            }
        });
        DatabaseProxy { address, up, hanging, connections, held }
    }

    /// Closes every open connection and refuses new ones.
    pub fn stop(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.close_relays();
    }

    /// Closes every open connection and holds new ones without an answer:
    /// a database that stopped responding, so each attempt waits out its
    /// time-out.
    pub fn hang(&self) {
        self.hanging.store(true, Ordering::SeqCst);
        self.close_relays();
    }

    pub fn resume(&self) {
        self.hanging.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
        self.up.store(true, Ordering::SeqCst);
    }

    fn close_relays(&self) {
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    /// A pool for the same database as `pool`, connecting through this proxy.
    pub fn pool_like(&self, pool: &PgPool) -> PgPool {
        let options = pool.connect_options().as_ref().clone().host("127.0.0.1").port(self.address.port());
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_lazy_with(options)
    }
}

/// The address of the PostgreSQL server `pool` talks to.
pub fn database_address(pool: &PgPool) -> SocketAddr {
    let options = pool.connect_options();
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    format!("{host}:{}", options.get_port()).parse().expect("the test database is reached over TCP")
}

/// A `postgres://` URL for the per-test database behind `pool`, built from the
/// run's `DATABASE_URL` (same server and credentials, other database name).
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the test run");
    let database = pool.connect_options().get_database().expect("a per-test database").to_owned();
    let (without_query, query) = base.split_once('?').map_or((base.as_str(), None), |(a, q)| (a, Some(q)));
    let server = without_query.rsplit_once('/').map_or(without_query, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Polls `check` every 100 ms until it holds, for at most `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// A free TCP port on loopback (free when asked; the caller binds it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The real `server` binary on `port`, against the test's database, no Redis;
/// in development, as [`test_settings`] (it connects as the run's superuser).
pub fn start_server_binary(pool: &PgPool, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("DATABASE_URL", database_url(pool))
        .env("CEKPOT_DEPLOYMENT__ENVIRONMENT", "development")
        .env_remove("REDIS_URL")
        .env("CEKPOT_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("CEKPOT_LOG__FORMAT", "json")
        .env("CEKPOT_SERVICE__KEYS", test_keys_env())
        .env("CEKPOT_AUTH__JWT_SECRET", TEST_JWT_SECRET)
        .env("CEKPOT_DEPLOYMENT__SINGLE_INSTANCE", "true")
        .env("CEKPOT_HTTP__METRICS_TOKEN", TEST_METRICS_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the server binary starts")
}

/// Waits (up to 30 s) until the binary on `port` answers `/healthz`.
pub async fn wait_until_serving(port: u16) {
    let url = format!("http://127.0.0.1:{port}/healthz");
    let up = eventually(30, || async { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }).await;
    assert!(up, "the binary serves /healthz");
}

/// Runs a reconciliation as an admin would, and answers its report.
pub async fn reconcile(pool: &PgPool) -> server::reconciliation::Report {
    let actor = server::audit::Actor::system("test");
    server::reconciliation::run(pool, server::reconciliation::Trigger::Admin, &actor).await.unwrap()
}
