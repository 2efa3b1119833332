//! What both benches share: a fresh database and a release server binary per
//! measured run, readiness, the server's metrics, and latency percentiles.

// Seconds, rates and percentiles of timings — never money.
#![allow(clippy::float_arithmetic, dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A database of its own for one measured run, dropped afterwards.
pub struct Scratch {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl Scratch {
    pub async fn create(label: &str) -> anyhow::Result<Scratch> {
        let base = std::env::var("DATABASE_URL").context("DATABASE_URL is set by `make bench`")?;
        let name = format!("cekpot_bench_{}_{label}", std::process::id());
        let admin = sqlx::PgPool::connect(&base).await?;
        sqlx::query(&format!("create database {name}")).execute(&admin).await?;
        let url = format!("{}/{name}", base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server));
        Ok(Scratch { admin, name, url })
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        sqlx::query(&format!("drop database if exists {} with (force)", self.name))
            .execute(&self.admin)
            .await?;
        Ok(())
    }
}

/// Starts the release server binary on `port` with the environment given on
/// top of the bench's own (quiet logs, no Redis, 32 connections; a WORM
/// bucket of its own when `make bench` started a local S3 server). Its log
/// (warnings and errors) goes to `bench-server-<label>.log` in Cargo's
/// temporary directory for benches, whose path is printed.
pub fn start_server(
    label: &str,
    database_url: &str,
    port: u16,
    env: &[(&str, String)],
) -> anyhow::Result<Child> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    if let Ok(s3) = std::env::var("TEST_S3_URL") {
        command
            .env("CEKPOT_AUDIT__BUCKET__NAME", format!("bench-{}-{port}", std::process::id()))
            .env("CEKPOT_AUDIT__BUCKET__ENDPOINT", s3)
            .env("CEKPOT_AUDIT__BUCKET__PATH_STYLE", "true")
            .env("CEKPOT_AUDIT__BUCKET__CREATE", "true")
            .env("CEKPOT_AUDIT__BUCKET__ACCESS_KEY_ID", "bench")
            .env("CEKPOT_AUDIT__BUCKET__SECRET_ACCESS_KEY", "bench");
    }
    command
        .env("DATABASE_URL", database_url)
        .env_remove("REDIS_URL")
        .env("CEKPOT_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("CEKPOT_DATABASE__MAX_CONNECTIONS", "32")
        .env("CEKPOT_AUTH__JWT_SECRET", "a-bench-jwt-secret-of-at-least-32-bytes")
        .env("CEKPOT_DEPLOYMENT__SINGLE_INSTANCE", "true")
        // Every bench client is 127.0.0.1 and sends as fast as it can.
        .env("CEKPOT_HTTP__IP_REQUESTS_PER_WINDOW", "4000000000")
        .env("CEKPOT_PLAYERS__REQUESTS_PER_WINDOW", "4000000000")
        .env("CEKPOT_HTTP__METRICS_TOKEN", METRICS_TOKEN)
        // It connects as the run's superuser, which production refuses.
        .env("CEKPOT_DEPLOYMENT__ENVIRONMENT", "development")
        .env("CEKPOT_LOG__FILTER", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-server-{label}.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    eprintln!("    server log: {}", log.display());
    command.stdout(file).stderr(Stdio::inherit()).spawn().context("starting the server binary")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub async fn wait_until_ready(port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..300 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become ready")
}

/// What the bench's servers guard `/metrics` with.
const METRICS_TOKEN: &str = "bench-metrics-token";

/// The server's `/metrics`, with a reader of one sample's value (0 when absent).
pub struct Metrics(String);

impl Metrics {
    pub async fn read(port: u16) -> anyhow::Result<Metrics> {
        let response = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await?;
        Ok(Metrics(response.error_for_status()?.text().await?))
    }

    pub fn sample(&self, name: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }
}

/// p50, p95 and p99 in milliseconds.
pub fn percentiles(mut latencies: Vec<Duration>) -> [f64; 3] {
    latencies.sort_unstable();
    [50, 95, 99].map(|p| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)].as_secs_f64() * 1e3)
}

/// Concurrent clients, each keeping one request in flight.
pub const CLIENTS: usize = 64;

/// Sends requests `0..count` from [`CLIENTS`] clients, each built by
/// `build(client, n)`; answers every request's latency, from sending it to
/// reading its whole answer. Any answer but a 2xx stops the run.
pub async fn run_clients<F>(count: usize, build: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(&reqwest::Client, usize) -> anyhow::Result<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let build = Arc::new(build);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let (client, next, build) = (client.clone(), next.clone(), build.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count / CLIENTS + 1);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let request = build(&client, n)?;
                let sent = Instant::now();
                let response = request.send().await?;
                if !response.status().is_success() {
                    let status = response.status();
                    bail!("request {n} answered {status}: {}", response.text().await.unwrap_or_default());
                }
                response.bytes().await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}
