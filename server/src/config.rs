//! Typed configuration: built-in defaults, then an optional TOML file, then
//! environment variables (the environment wins). Secrets are `SecretString`s
//! so that `Debug` — and therefore every log line — shows them redacted.
//!
//! Environment names: `CEKPOT_<SECTION>__<KEY>` (e.g. `CEKPOT_HTTP__ADDR`), plus
//! the conventional `DATABASE_URL` and `REDIS_URL`. The file is `cekpot.toml` in
//! the working directory, or the path in `CEKPOT_CONFIG`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::ids::ProviderId;
use domain::money::{Currency, MoneyMode};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How contributions reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// Contributions arriving together share one transaction.
    GroupCommit,
    /// One transaction per contribution: the baseline `make bench` compares with.
    Direct,
}

/// How the batcher groups contributions.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// How long the first contribution of a batch waits for company when no
    /// batch is in flight (under load, the batch in flight is the wait).
    pub window: Duration,
    /// The most contributions one transaction writes.
    pub size_max: usize,
    /// Batches committing at once.
    pub in_flight_max: usize,
    /// Contributions waiting for a batch before callers are turned away.
    pub queue_max: usize,
    /// How long a request may wait for its batch to start.
    pub deadline: Duration,
}

/// The defaults, in the same format an operator's file uses.
pub const DEFAULTS: &str = r#"
[http]
addr = "127.0.0.1:3000"
body_limit_bytes = 65536
header_bytes_max = 16384
header_read_timeout_ms = 10000
request_timeout_ms = 10000
shutdown_grace_ms = 20000
public_cache_ms = 1000
in_flight_max = 512
rate_window_s = 10
ip_requests_per_window = 600

[database]
url = "postgres://postgres@127.0.0.1:5432/cekpot"
max_connections = 16
acquire_timeout_ms = 3000
migrate_on_start = true

[redis]

[engine]
mode = "group_commit"
batch_window_us = 500
batch_size_max = 512
batches_in_flight_max = 1
spin_batches_in_flight_max = 2
queue_max = 20000
queue_deadline_ms = 8000

[reconciliation]
interval_s = 3600

[audit]
segment_records_max = 1000
segment_bytes_max = 8388608
segment_age_max_s = 60
ship_interval_ms = 1000
retain_days = 1827

[service]
keys = []

[telegram]
init_data_max_age_s = 300

[auth]
token_ttl_s = 900
refresh_ttl_s = 86400
session_max_age_s = 604800

[deployment]
environment = "production"

[money]
mode = "demo"
currency = "CHIPS"

[slot]
min_bet_micros = 100000
max_bet_micros = 50000000
bet_step_micros = 10000
spin_interval_ms = 2500

[players]
requests_per_window = 100
demo_credit_micros = 1000000000
demo_deposits = false
deposit_max_micros = 1000000000
limit_cooling_off_s = 86400
velocity_steady_spins = 20
velocity_tolerance_ms = 50
spins_in_flight_max = 2

[dev]
sign_in_page = false

[site]
root = "target/site"
pkg_dir = "pkg"

[demo]
seed_jackpots = true

[log]
format = "pretty"
filter = "info,server=debug,tower_http=info,sqlx=warn"
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub engine: EngineSettings,
    pub reconciliation: ReconciliationSettings,
    pub audit: AuditSettings,
    pub service: ServiceSettings,
    pub telegram: TelegramSettings,
    pub auth: AuthSettings,
    pub deployment: DeploymentSettings,
    pub money: MoneySettings,
    pub slot: SlotSettings,
    pub players: PlayerSettings,
    pub dev: DevSettings,
    pub site: SiteSettings,
    pub demo: DemoSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// Largest request body accepted; larger ones get `413 payload_too_large`.
    pub body_limit_bytes: usize,
    /// Largest total of a request's header names and values; larger gets
    /// `431 headers_too_large`.
    pub header_bytes_max: usize,
    /// `/metrics` answers only `Authorization: Bearer <this>`; unset, it is
    /// open (development only: production refuses to start without it).
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    /// Send `Strict-Transport-Security` (set when served behind TLS).
    #[serde(default)]
    pub hsts: bool,
    /// A connection whose request headers have not all arrived this long
    /// after it opened (or after its last answer) is closed: a slowloris
    /// client cannot hold sockets.
    pub header_read_timeout_ms: u64,
    /// A request still running after this gets `408 request_timeout`.
    pub request_timeout_ms: u64,
    /// On SIGTERM, how long in-flight requests may take to finish.
    pub shutdown_grace_ms: u64,
    /// The lobby, `GET /api/jackpots` and `/readyz` read the database at
    /// most once per this period ([`crate::recent`]); 0 reads per request.
    pub public_cache_ms: u64,
    /// Requests being served at once (all routes but the probes and `/metrics`);
    /// past it a request is answered `503 service_unavailable` at once
    /// rather than queued behind the others.
    pub in_flight_max: usize,
    /// The window request rates are counted in.
    pub rate_window_s: u64,
    /// Requests one client address may send per window to `/api`, the pages
    /// and `/dev` (not the signed service API, which is limited per key, nor
    /// the probes); more get `429 rate_limited`.
    pub ip_requests_per_window: u32,
    /// Behind a proxy: the header whose last address is the client's (what
    /// the nearest proxy wrote, e.g. `x-forwarded-for`). Unset: the
    /// connection's peer address. Set it only when a proxy always writes it.
    #[serde(default)]
    pub client_ip_header: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a request waits for a free connection before answering 503.
    pub acquire_timeout_ms: u64,
    pub migrate_on_start: bool,
}

/// Who may call the jackpot service API (`docs/SIGNING.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Every active key. A caller may have several at once, so a secret is
    /// rotated by adding a key, moving traffic to it, then removing the old one.
    pub keys: Vec<ServiceKey>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKey {
    /// Sent in `X-Cekpot-Key-Id`; recorded as who made a change.
    pub id: String,
    pub secret: SecretString,
    pub role: Role,
    /// The game provider the key belongs to: the namespace of its
    /// idempotency keys and of the players it names. Several keys of one
    /// provider (a rotation) share it. Absent: the key's id.
    #[serde(default)]
    pub provider: Option<String>,
    /// The games it may contribute under (never the Mini App's slot, whose
    /// bets come only from spins). None listed: no contribution.
    #[serde(default)]
    pub games: Vec<String>,
    /// The jackpots it may contribute to and award. None listed: neither.
    #[serde(default)]
    pub jackpots: Vec<String>,
    /// Its largest single bet.
    #[serde(default = "default_key_bet_max")]
    pub bet_max_micros: i64,
    /// The most its bets may add up to in one UTC day.
    #[serde(default = "default_key_daily_volume_max")]
    pub daily_volume_max_micros: i64,
}

/// 1,000.00 a bet.
fn default_key_bet_max() -> i64 {
    1_000_000_000
}

/// 1,000,000.00 a day.
fn default_key_daily_volume_max() -> i64 {
    1_000_000_000_000
}

impl ServiceKey {
    /// The key's provider, checked at start-up by [`ServiceSettings::check`].
    pub fn provider(&self) -> Result<ProviderId, String> {
        let provider = self.provider.as_deref().unwrap_or(&self.id);
        provider.parse().map_err(|e| format!("service key {:?}: provider {provider:?}: {e}", self.id))
    }
}

impl ServiceSettings {
    /// Every key names a provider, games and jackpots that are ids — never
    /// `house_game`, the Mini App's slot — and positive limits; no two keys
    /// share an id.
    pub fn check(&self, house_game: &str) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for key in &self.keys {
            key.provider()?;
            let named = |what: &str, id: &str| format!("service key {:?}: {what} {id:?}", key.id);
            for game in &key.games {
                game.parse::<domain::ids::GameId>().map_err(|e| format!("{}: {e}", named("game", game)))?;
                if game == house_game {
                    return Err(format!(
                        "{} is the Mini App's slot: only spins bet on it",
                        named("game", game)
                    ));
                }
            }
            for jackpot in &key.jackpots {
                jackpot
                    .parse::<domain::ids::JackpotId>()
                    .map_err(|e| format!("{}: {e}", named("jackpot", jackpot)))?;
            }
            if key.bet_max_micros <= 0 || key.daily_volume_max_micros <= 0 {
                return Err(format!(
                    "service key {:?}: bet_max_micros and daily_volume_max_micros must be positive",
                    key.id
                ));
            }
            if !ids.insert(key.id.as_str()) {
                return Err(format!("service.keys: the key id {:?} is configured twice", key.id));
            }
        }
        Ok(())
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Readonly,
    /// Reads, contributions and provider awards.
    GameService,
    /// Everything: also configuration changes, reconciliation runs, rollbacks.
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Readonly => "readonly",
            Role::GameService => "game_service",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Absent: run single-instance with in-process fallbacks.
    #[serde(default)]
    pub url: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// `group_commit`, or `direct` (one transaction per contribution, the baseline).
    pub mode: CommitMode,
    /// How long the first contribution of a batch waits for others, in microseconds.
    pub batch_window_us: u64,
    /// The most contributions one transaction writes.
    pub batch_size_max: usize,
    /// Batches committing at the same time.
    pub batches_in_flight_max: usize,
    /// Spin batches committing at the same time: each locks only its own
    /// players until it reaches the jackpots, so two overlap their first
    /// half.
    pub spin_batches_in_flight_max: usize,
    /// Contributions waiting for a batch before callers get 503.
    pub queue_max: usize,
    /// A request still waiting when its batch starts this long after it was
    /// queued is not written: its caller gets `503 service_unavailable`
    /// (nothing applied; retry with the same key) rather than a late
    /// `408`. At most `http.request_timeout_ms`.
    pub queue_deadline_ms: u64,
}

impl EngineSettings {
    pub fn spin_limits(&self) -> BatchLimits {
        BatchLimits { in_flight_max: self.spin_batches_in_flight_max.max(1), ..self.limits() }
    }

    pub fn limits(&self) -> BatchLimits {
        BatchLimits {
            window: Duration::from_micros(self.batch_window_us),
            size_max: self.batch_size_max.max(1),
            in_flight_max: self.batches_in_flight_max.max(1),
            queue_max: self.queue_max.max(1),
            deadline: Duration::from_millis(self.queue_deadline_ms.max(1)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationSettings {
    /// Seconds between scheduled runs; 0 turns the schedule off.
    pub interval_s: u64,
}

/// The Telegram bot this Mini App belongs to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// From @BotFather; it keys the `initData` signature. Absent: players
    /// cannot sign in (`503 telegram_not_configured`).
    #[serde(default)]
    pub bot_token: Option<SecretString>,
    /// How old `initData`'s `auth_date` may be: Telegram stamps it when the
    /// Mini App opens, and the app signs in at once. At most an hour
    /// ([`INIT_DATA_MAX_AGE_S_MAX`]).
    pub init_data_max_age_s: i64,
}

/// The longest `telegram.init_data_max_age_s` accepted: a launch link is good
/// for minutes, and sessions outlive it by refresh token.
pub const INIT_DATA_MAX_AGE_S_MAX: i64 = 3_600;

/// Players' session tokens (JWT, HS256).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Signs players' tokens; at least 32 bytes. Absent: a random key per
    /// process (tokens then end with the process, and only work on it).
    #[serde(default)]
    pub jwt_secret: Option<SecretString>,
    /// How long an access token is valid.
    pub token_ttl_s: i64,
    /// A session not renewed for this long ends (each renewal moves it on).
    pub refresh_ttl_s: i64,
    /// A session ends this long after its sign-in however often it is
    /// renewed; the player then signs in from Telegram again.
    pub session_max_age_s: i64,
}

impl AuthSettings {
    /// The lifetimes hold together, or why not.
    pub fn check(&self) -> Result<(), String> {
        if self.token_ttl_s <= 0 {
            return Err("auth.token_ttl_s must be positive".into());
        }
        if self.refresh_ttl_s < self.token_ttl_s {
            return Err("auth.refresh_ttl_s must be at least auth.token_ttl_s".into());
        }
        if self.session_max_age_s < self.refresh_ttl_s {
            return Err("auth.session_max_age_s must be at least auth.refresh_ttl_s".into());
        }
        Ok(())
    }
}

/// Where this server runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSettings {
    /// `production` (the default) refuses development-only settings at start-up.
    pub environment: Environment,
    /// This deployment is one instance: request nonces may stay in-process.
    /// Production without Redis refuses to start unless this says so, since
    /// a signed request replayed to a second instance would pass there.
    #[serde(default)]
    pub single_instance: bool,
}

/// The shortest service key secret production accepts, in bytes.
pub const SERVICE_SECRET_LENGTH_MIN: usize = 32;

impl Settings {
    /// What production refuses to start with, each naming its setting.
    pub fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.dev.sign_in_page {
            problems.push("dev.sign_in_page is for development only".to_owned());
        }
        if self.auth.jwt_secret.is_none() {
            problems.push(
                "auth.jwt_secret is unset: each instance would sign players' tokens with its own key, \
                 and refuse the others'"
                    .to_owned(),
            );
        }
        if self.http.metrics_token.is_none() {
            problems.push("http.metrics_token is unset: /metrics would answer anyone".to_owned());
        }
        if self.redis.url.is_none() && !self.deployment.single_instance {
            problems.push(
                "redis.url is unset: request nonces would be checked per instance, so a signed request \
                 replays to another one (set deployment.single_instance = true if there is only one)"
                    .to_owned(),
            );
        }
        if self.audit.bucket.is_none() {
            problems.push(
                "audit.bucket is unset: without the WORM copy of the audit trail, whoever can rewrite the \
                 database could rewrite the chain and it would still verify"
                    .to_owned(),
            );
        }
        if self.database.migrate_on_start {
            problems.push(
                "database.migrate_on_start is true: migrating needs the tables' owner, and the server must \
                 not run as the owner (run `server migrate` as the owner, the server as deploy/postgres/app-role.sql's role)"
                    .to_owned(),
            );
        }
        let mut secrets = std::collections::HashMap::new();
        for key in &self.service.keys {
            let secret = key.secret.expose_secret();
            if secret.len() < SERVICE_SECRET_LENGTH_MIN {
                problems.push(format!(
                    "service.keys: the secret of key {:?} is {} bytes; at least {SERVICE_SECRET_LENGTH_MIN}",
                    key.id,
                    secret.len()
                ));
            }
            if let Some(other) = secrets.insert(secret, key.id.as_str()) {
                problems.push(format!("service.keys: keys {other:?} and {:?} share one secret", key.id));
            }
        }
        problems
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Development,
    Production,
}

/// The Mini App's money: play-money chips or an operator's real money
/// (`docs/SECURITY.md`, item 4). Demo and real money never mix: demo credit
/// and demo deposits exist only in demo mode, and a demo currency's code
/// (four to eight letters) can never equal a real one's (ISO 4217).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneySettings {
    pub mode: MoneyMode,
    /// The currency of players' wallets, their bets and the pools the slot
    /// feeds: `CHIPS` (or another play-money code) in demo mode, an ISO 4217
    /// code in real mode.
    pub currency: String,
}

impl Settings {
    /// The Mini App's currency, checked against the money mode and the
    /// settings that hand out demo money. Refused in every environment.
    pub fn money_currency(&self) -> Result<Currency, String> {
        let currency: Currency = self
            .money
            .currency
            .parse()
            .map_err(|e| format!("money.currency {:?}: {e}", self.money.currency))?;
        if currency.money_mode() != self.money.mode {
            return Err(format!(
                "money.currency {currency} is {} money but money.mode is {}: play money has a code of \
                 four to eight letters (CHIPS), real money its three-letter ISO 4217 code",
                currency.money_mode().as_str(),
                self.money.mode.as_str()
            ));
        }
        if self.money.mode == MoneyMode::Real {
            if self.players.demo_credit_micros != 0 {
                return Err("players.demo_credit_micros must be 0 when money.mode is real: demo credit \
                            never enters a real-money wallet"
                    .to_owned());
            }
            if self.players.demo_deposits {
                return Err("players.demo_deposits must be false when money.mode is real: a real deposit \
                            comes from a payment provider"
                    .to_owned());
            }
        }
        Ok(currency)
    }
}

/// The Mini App's slot (`POST /api/spin`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSettings {
    /// The slot definition (reels, paytable, paylines). Absent: the built-in
    /// `server/config/slot.toml`.
    #[serde(default)]
    pub definition: Option<PathBuf>,
    pub min_bet_micros: i64,
    pub max_bet_micros: i64,
    /// Every bet is a whole multiple of this; it must itself be a multiple of
    /// the number of paylines, so that line bets and wins are exact.
    pub bet_step_micros: i64,
    /// The least time between two spins of one player (2.5 s is the UK rule).
    pub spin_interval_ms: u64,
}

/// Players' wallets and responsible-gambling rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerSettings {
    /// Requests one player may send per `http.rate_window_s` to the player
    /// API; more get `429 rate_limited`.
    pub requests_per_window: u32,
    /// Demo credits a new player's wallet receives from the house; 0 gives none.
    pub demo_credit_micros: i64,
    /// `POST /api/wallet/deposit` credits demo money (no payment provider):
    /// for demo installations only.
    pub demo_deposits: bool,
    /// The largest single deposit.
    pub deposit_max_micros: i64,
    /// How long raising or removing a daily limit waits before it applies.
    pub limit_cooling_off_s: i64,
    /// Spins in a row at near-constant intervals that flag a player for review.
    pub velocity_steady_spins: i32,
    /// How close two intervals must be to count as "near-constant".
    pub velocity_tolerance_ms: i64,
    /// A player's spins queued or being written at once, per instance; more
    /// are refused at the door (`429 spin_in_progress`), so that one player
    /// cannot fill the queue everyone shares.
    pub spins_in_flight_max: u32,
}

/// Development helpers; each is refused when `deployment.environment` is `production`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSettings {
    /// `/dev/sign-in`: a page that signs `initData` for a chosen test user
    /// with the configured bot token, so the Mini App runs in a plain browser.
    pub sign_in_page: bool,
}

/// The audit trail's shipping to the WORM bucket (docs/AUDIT.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// A segment is sealed when it holds this many records…
    pub segment_records_max: i64,
    /// …or once its records' bodies reach this many bytes (a single larger
    /// record is a segment of its own), so a segment always fits in memory.
    pub segment_bytes_max: i64,
    /// …or when its oldest record is this old, whichever comes first.
    pub segment_age_max_s: u64,
    /// How often the shipper looks for records to seal.
    pub ship_interval_ms: u64,
    /// Each segment is locked (COMPLIANCE mode) for this many days; at least
    /// [`RETAIN_DAYS_MIN`] (five years).
    pub retain_days: i64,
    /// Absent: records are kept in PostgreSQL only and nothing is shipped.
    #[serde(default)]
    pub bucket: Option<BucketSettings>,
}

/// Five years however many leap days they hold, and a day to spare.
pub const RETAIN_DAYS_MIN: i64 = 5 * 365 + 2;

impl AuditSettings {
    /// The settings the shipper can run with, or why not.
    pub fn check(&self) -> Result<(), String> {
        if self.retain_days < RETAIN_DAYS_MIN {
            return Err(format!(
                "audit.retain_days is {}; segments must be kept at least {RETAIN_DAYS_MIN} days (five years)",
                self.retain_days
            ));
        }
        if !(1..=100_000).contains(&self.segment_records_max) {
            return Err("audit.segment_records_max must be between 1 and 100000".into());
        }
        if !(1_024..=268_435_456).contains(&self.segment_bytes_max) {
            return Err("audit.segment_bytes_max must be between 1024 and 268435456".into());
        }
        Ok(())
    }

    pub fn segment_age_max(&self) -> Duration {
        Duration::from_secs(self.segment_age_max_s)
    }

    pub fn ship_interval(&self) -> Duration {
        Duration::from_millis(self.ship_interval_ms.max(10))
    }
}

/// An S3-compatible bucket created with Object Lock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    pub name: String,
    /// Absent: AWS S3 itself. Set for another S3-compatible service.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Where segments go inside the bucket: `<prefix>segments/<number>.jsonl`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Path-style addressing (`endpoint/bucket/key`), which most local S3 servers need.
    #[serde(default)]
    pub path_style: bool,
    /// Create the bucket, with Object Lock, when it is missing (development and tests).
    #[serde(default)]
    pub create: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_prefix() -> String {
    "audit/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// Where `cargo leptos build` put the compiled site (wasm, JS, CSS, assets).
    pub root: PathBuf,
    pub pkg_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// Give an empty database three demo jackpots (local, shared, mega).
    pub seed_jackpots: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG`, when set, takes precedence.
    pub filter: String,
}

impl HttpSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl Settings {
    /// Reads defaults, the optional file and the process environment.
    pub fn load() -> Result<Settings, Box<figment::Error>> {
        Settings::from_figment(Settings::figment())
    }

    pub fn figment() -> Figment {
        let file = std::env::var_os("CEKPOT_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("cekpot.toml"));
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .merge(Toml::file(file))
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database.url".into()))
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
            .merge(Env::prefixed("CEKPOT_").ignore(&["CONFIG"]).split("__"))
    }

    pub fn from_figment(figment: Figment) -> Result<Settings, Box<figment::Error>> {
        figment.extract().map_err(Box::new)
    }
}

#[cfg(test)]
// figment::Jail fixes its closures' error type to figment::Error; not ours to shrink.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;
    use secrecy::ExposeSecret;

    #[test]
    fn environment_overrides_the_file_which_overrides_the_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("cekpot.toml", "[http]\naddr = \"0.0.0.0:8080\"\nbody_limit_bytes = 1024\n")?;
            jail.set_env("CEKPOT_HTTP__BODY_LIMIT_BYTES", "2048");
            jail.set_env("DATABASE_URL", "postgres://app:hunter2@db/cekpot");
            let settings = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(settings.http.addr.to_string(), "0.0.0.0:8080");
            assert_eq!(settings.http.body_limit_bytes, 2048);
            assert_eq!(settings.http.request_timeout_ms, 10_000, "default kept");
            assert_eq!(settings.database.url.expose_secret(), "postgres://app:hunter2@db/cekpot");
            assert!(settings.redis.url.is_none());
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("DATABASE_URL", "postgres://app:hunter2@db/cekpot");
            jail.set_env("REDIS_URL", "redis://:sesame@cache:6379");
            jail.set_env(
                "CEKPOT_SERVICE__KEYS",
                r#"[{id="provider-a",secret="open-says-me",role="game_service"}]"#,
            );
            let settings = Settings::load().map_err(|e| e.to_string())?;
            let debug = format!("{settings:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(!debug.contains("sesame"), "{debug}");
            assert!(!debug.contains("open-says-me"), "{debug}");
            assert!(debug.contains("REDACTED"), "{debug}");
            Ok(())
        });
    }

    #[test]
    fn service_keys_come_from_the_environment_as_a_list() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env(
                "CEKPOT_SERVICE__KEYS",
                r#"[{id="ops-1",secret="s1",role="admin"},{id="feed-1",secret="s2",role="readonly"}]"#,
            );
            let settings = Settings::load().map_err(|e| e.to_string())?;
            let keys: Vec<(&str, &str, Role)> = settings
                .service
                .keys
                .iter()
                .map(|k| (k.id.as_str(), k.secret.expose_secret(), k.role))
                .collect();
            assert_eq!(keys, vec![("ops-1", "s1", Role::Admin), ("feed-1", "s2", Role::Readonly)]);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused_rather_than_ignored() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("CEKPOT_HTTP__BODY_LIMIT", "10");
            let error = Settings::load().expect_err("a misspelt key must not pass silently");
            assert!(error.to_string().contains("body_limit"), "{error}");
            Ok(())
        });
    }
}
