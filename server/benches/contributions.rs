//! `make bench`: contributions per second and latency percentiles over HTTP,
//! for the group-commit engine and for the one-transaction-per-contribution
//! baseline, measured in the same run on the same machine.
//!
//! Each mode gets a fresh database and a release build of the real server
//! binary; 64 clients keep one request each in flight.

// Seconds, rates and percentiles of timings — never money.
#![allow(clippy::float_arithmetic)]

mod common;

use std::time::{Duration, Instant};

use anyhow::Context;
use common::{
    free_port, percentiles, run_clients, start_server, wait_until_ready, Metrics, Scratch, CLIENTS,
};

const WARM_UP: usize = 2_000;
/// Override with `BENCH_CONTRIBUTIONS` for a quicker look.
const MEASURED_DEFAULT: usize = 40_000;
/// The pools an outside provider's game feeds in the demo: the mega and the shared one.
const JACKPOTS: [&str; 2] = ["cekpot-mega", "caspian-shared"];
/// The load generator signs every request, as a game provider does.
const BENCH_KEY: &str = "bench-provider";
const BENCH_SECRET: &str = "bench-secret-not-for-production-use";

struct Figures {
    mode: &'static str,
    per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// Group commit only: mean contributions per batch and mean time from a
    /// batch's first statement to its commit, from the server's metrics.
    batches: Option<(f64, f64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let measured = match std::env::var("BENCH_CONTRIBUTIONS") {
        Ok(count) => count.parse().context("BENCH_CONTRIBUTIONS is a whole number")?,
        Err(_) => MEASURED_DEFAULT,
    };
    let mut figures = Vec::new();
    for mode in ["direct", "group_commit"] {
        eprintln!(
            "==> {mode}: fresh database, server, {WARM_UP} warm-up + {measured} measured contributions"
        );
        figures.push(measure(mode, measured).await?);
    }
    print_table(&figures, measured);
    Ok(())
}

async fn measure(mode: &'static str, measured: usize) -> anyhow::Result<Figures> {
    let scratch = Scratch::create(mode).await?;
    let url = scratch.url.clone();
    let port = free_port()?;
    let env = [
        ("CEKPOT_ENGINE__MODE", mode.to_owned()),
        (
            "CEKPOT_SERVICE__KEYS",
            format!(
                r#"[{{id="{BENCH_KEY}",secret="{BENCH_SECRET}",role="game_service",games=["caspian-reels"],jackpots=["cekpot-mega","caspian-shared"]}}]"#
            ),
        ),
    ];
    let mut server = start_server(&format!("contributions_{mode}"), &url, port, &env)?;
    let result = async {
        wait_until_ready(port).await?;
        run_load(port, "warm", WARM_UP).await?;
        let before = batch_totals(port).await?;
        let started = Instant::now();
        let latencies = run_load(port, "run", measured).await?;
        let elapsed = started.elapsed();
        let after = batch_totals(port).await?;
        let batches = after.count - before.count;
        if batches > 0.0 {
            eprintln!("    {batches} batches, {} of them locked", after.locked - before.locked);
        }
        let batches = (batches > 0.0).then(|| {
            (
                (after.size_sum - before.size_sum) / batches,
                (after.seconds_sum - before.seconds_sum) / batches * 1e3,
            )
        });
        let db = sqlx::PgPool::connect(&url).await?;
        let (records, shipped): (i64, i64) = sqlx::query_as(
            "select (select last_seq from audit_chain_head),
                    (select coalesce(max(last_seq), 0) from audit_segments)",
        )
        .fetch_one(&db)
        .await?;
        eprintln!("    {records} audit records, {shipped} of them shipped to the WORM bucket so far");
        db.close().await;
        let [p50_ms, p95_ms, p99_ms] = percentiles(latencies);
        Ok(Figures {
            mode,
            per_second: measured as f64 / elapsed.as_secs_f64(),
            p50_ms,
            p95_ms,
            p99_ms,
            batches,
        })
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    scratch.drop().await?;
    result
}

/// Running totals of the server's batch histograms.
struct BatchTotals {
    locked: f64,
    count: f64,
    size_sum: f64,
    seconds_sum: f64,
}

async fn batch_totals(port: u16) -> anyhow::Result<BatchTotals> {
    let metrics = Metrics::read(port).await?;
    let sample = |name: &str| metrics.sample(name);
    Ok(BatchTotals {
        locked: sample("cekpot_contribution_batches_total{path=\"locked\"}"),
        count: sample("cekpot_contribution_batch_size_count"),
        size_sum: sample("cekpot_contribution_batch_size_sum"),
        seconds_sum: sample("cekpot_contribution_batch_seconds_sum"),
    })
}

/// Sends `count` signed contributions from the bench's clients; answers each one's latency.
async fn run_load(port: u16, phase: &'static str, count: usize) -> anyhow::Result<Vec<Duration>> {
    let signer = cekpot_client::Signer::new(BENCH_KEY, BENCH_SECRET.as_bytes().to_vec());
    run_clients(count, move |client, n| {
        let jackpot = JACKPOTS[n % JACKPOTS.len()];
        let body = serde_json::to_vec(&serde_json::json!({
            "gameId": "caspian-reels",
            "playerId": format!("bench-{}", n % 1_000),
            "betAmount": "1.00",
            "currency": "CHIPS",
        }))?;
        let path = format!("/jackpot/{jackpot}/contribute");
        let key = format!("{phase}-{n}");
        let mut request = client
            .post(format!("http://127.0.0.1:{port}{path}"))
            .header("idempotency-key", &key)
            .header("content-type", "application/json");
        for (name, value) in signer.headers("POST", &path, &key, &body) {
            request = request.header(name, value);
        }
        Ok(request.body(body))
    })
    .await
}

fn print_table(figures: &[Figures], measured: usize) {
    println!();
    println!("contributions over HTTP, {CLIENTS} concurrent clients, {measured} measured");
    println!("| engine | contributions/s | p50 ms | p95 ms | p99 ms | mean batch | mean commit ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        let (size, commit) = match f.batches {
            Some((size, ms)) => (format!("{size:.1}"), format!("{ms:.2}")),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {size} | {commit} |",
            f.mode, f.per_second, f.p50_ms, f.p95_ms, f.p99_ms
        );
    }
    if let [baseline, group] = figures {
        println!();
        println!("group commit vs baseline: {:.1}x the throughput", group.per_second / baseline.per_second);
    }
}
