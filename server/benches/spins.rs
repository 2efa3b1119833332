//! `make bench`, second part: spins per second and latency percentiles over
//! HTTP (`POST /api/spin`, each with its bet, draw, win, three contributions
//! and the audit record of its batch), many players at once. Measured twice in
//! the same run on the same machine: spins group-committed (the server as
//! shipped), and the baseline of one transaction per spin (batches of one).
//!
//! The players' minimum interval between spins is set to 0 so that it does
//! not throttle the run (at 2.5 s, 3,000 spins/s would need 7,500 players).

// Seconds, rates and percentiles of timings — never money.
#![allow(clippy::float_arithmetic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::{
    free_port, percentiles, run_clients, start_server, wait_until_ready, Metrics, Scratch, CLIENTS,
};

const PLAYERS: usize = 500;
const WARM_UP: usize = 2_000;
/// Override with `BENCH_SPINS` for a quicker look.
const MEASURED_DEFAULT: usize = 20_000;
const BOT_TOKEN: &str = "7000000003:AAbench-bot-token";

struct Figures {
    mode: &'static str,
    per_second: f64,
    percentiles: [f64; 3],
    mean_batch: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let measured = match std::env::var("BENCH_SPINS") {
        Ok(count) => count.parse().context("BENCH_SPINS is a whole number")?,
        Err(_) => MEASURED_DEFAULT,
    };
    let mut figures = Vec::new();
    for (mode, batch_size_max) in [("one_per_transaction", 1), ("group_commit", 512)] {
        eprintln!("==> spins, {mode}: fresh database, server, {PLAYERS} players, {WARM_UP} warm-up + {measured} measured spins");
        figures.push(measure(mode, batch_size_max, measured).await?);
    }
    println!();
    println!("spins over HTTP, {CLIENTS} concurrent clients, {PLAYERS} players, {measured} measured");
    println!("| spins | spins/s | p50 ms | p95 ms | p99 ms | mean batch |");
    println!("|---|---:|---:|---:|---:|---:|");
    for f in &figures {
        let [p50, p95, p99] = f.percentiles;
        let batch = f.mean_batch.map_or("–".to_owned(), |b| format!("{b:.1}"));
        println!("| {} | {:.0} | {p50:.2} | {p95:.2} | {p99:.2} | {batch} |", f.mode, f.per_second);
    }
    if let [baseline, group] = &figures[..] {
        println!();
        println!(
            "group commit vs one transaction per spin: {:.1}x the throughput",
            group.per_second / baseline.per_second
        );
    }
    Ok(())
}

async fn measure(mode: &'static str, batch_size_max: usize, measured: usize) -> anyhow::Result<Figures> {
    let scratch = Scratch::create(&format!("spins_{mode}")).await?;
    let port = free_port()?;
    let env = [
        ("CEKPOT_TELEGRAM__BOT_TOKEN", BOT_TOKEN.to_owned()),
        ("CEKPOT_SLOT__SPIN_INTERVAL_MS", "0".to_owned()),
        // Enough for every spin of the run at the smallest bet.
        ("CEKPOT_PLAYERS__DEMO_CREDIT_MICROS", "100000000000".to_owned()),
        // Steady machine-driven play is what this is; don't flag it.
        ("CEKPOT_PLAYERS__VELOCITY_STEADY_SPINS", "1000000000".to_owned()),
        ("CEKPOT_ENGINE__BATCH_SIZE_MAX", batch_size_max.to_string()),
    ];
    let mut server = start_server(&format!("spins_{mode}"), &scratch.url, port, &env)?;
    let result = async {
        wait_until_ready(port).await?;
        let tokens = Arc::new(sign_in_players(port).await?);
        run_load(port, &tokens, "warm", WARM_UP).await?;
        let before = Metrics::read(port).await?;
        let started = Instant::now();
        let latencies = run_load(port, &tokens, "run", measured).await?;
        let elapsed = started.elapsed();
        let after = Metrics::read(port).await?;
        let batches =
            after.sample("cekpot_spin_batch_size_count") - before.sample("cekpot_spin_batch_size_count");
        let spins = after.sample("cekpot_spin_batch_size_sum") - before.sample("cekpot_spin_batch_size_sum");
        let relocked = after.sample("cekpot_spin_batches_relocked_total")
            - before.sample("cekpot_spin_batches_relocked_total");
        eprintln!("    {batches} batches, {relocked} of them run again locking the jackpots first");
        Ok(Figures {
            mode,
            per_second: measured as f64 / elapsed.as_secs_f64(),
            percentiles: percentiles(latencies),
            mean_batch: (batches > 0.0).then(|| spins / batches),
        })
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    scratch.drop().await?;
    result
}

/// Signs in `PLAYERS` Telegram users (as the Mini App does) and answers their tokens.
async fn sign_in_players(port: u16) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(PLAYERS);
    for n in 0..PLAYERS {
        let user = serde_json::json!({ "id": 5_000_000 + n, "first_name": format!("Bench {n}") }).to_string();
        let auth_date = chrono::Utc::now().timestamp().to_string();
        let init_data = domain::telegram::sign(&[("user", &user), ("auth_date", &auth_date)], BOT_TOKEN);
        let response = client
            .post(format!("http://127.0.0.1:{port}/api/auth/telegram"))
            .json(&serde_json::json!({ "initData": init_data }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("signing in player {n} answered {}", response.status());
        }
        let body: serde_json::Value = response.json().await?;
        tokens.push(body["token"].as_str().context("a token")?.to_owned());
    }
    Ok(tokens)
}

/// Sends `count` spins from the bench's clients, players taken in turn;
/// answers each one's latency.
async fn run_load(
    port: u16,
    tokens: &Arc<Vec<String>>,
    phase: &'static str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let tokens = tokens.clone();
    run_clients(count, move |client, n| {
        Ok(client
            .post(format!("http://127.0.0.1:{port}/api/spin"))
            .bearer_auth(&tokens[n % tokens.len()])
            .header("idempotency-key", format!("{phase}-{n}"))
            .json(&serde_json::json!({ "betAmount": "1.00" })))
    })
    .await
}
