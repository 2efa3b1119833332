//! Prometheus metrics, served at `GET /metrics`. One recorder per process (the
//! `metrics` facade is global); every server in the process shares it.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `cekpot_reconciliation_mismatch_ratio` | gauge | mismatches / checks of the latest run (0 when the books agree) |
//! | `cekpot_reconciliation_mismatches` | gauge | mismatches of the latest run |
//! | `cekpot_reconciliation_runs_total{trigger}` | counter | runs, by schedule, admin or cli |
//! | `cekpot_contributions_total{outcome}` | counter | contributions answered: `accepted` or `refused` |
//! | `cekpot_contribution_batch_size` | histogram | contributions per group commit |
//! | `cekpot_contribution_batch_seconds` | histogram | one group commit, first statement to commit |
//! | `cekpot_contribution_batch_failures_total` | counter | batches that failed whole and were retried one by one |
//! | `cekpot_contributions_dropped_total{reason}` | counter | queued contributions never written: `caller_gone` (the caller stopped waiting) or `deadline` (`engine.queue_deadline_ms`) |
//! | `cekpot_contribution_batches_total{path}` | counter | batches written `unlocked` (one self-checking statement) or `locked` |
//! | `cekpot_awards_total{trigger_mode}` | counter | awards paid |
//! | `cekpot_jackpot_changes_total` | counter | configuration changes |
//! | `cekpot_award_rollbacks_total` | counter | awards rolled back |
//! | `cekpot_audit_segments_shipped_total` | counter | audit segments written to the WORM bucket |
//! | `cekpot_audit_ship_failures_total` | counter | shipper runs that failed (retried at the next tick) |
//! | `cekpot_audit_unshipped_records` | gauge | audit records appended and not shipped yet |
//! | `cekpot_spins_total{outcome}` | counter | spins answered: `win` (returned more than the bet), `no_win`, `refused` |
//! | `cekpot_spin_batch_size` | histogram | spins per group commit |
//! | `cekpot_spin_batch_seconds` | histogram | one spin batch, first statement to commit |
//! | `cekpot_spin_batch_failures_total` | counter | spin batches that failed whole and were retried one by one |
//! | `cekpot_spins_dropped_total{reason}` | counter | queued spins never written: `caller_gone` or `deadline` |
//! | `cekpot_spin_batches_total{path}` | counter | spin batches committed `chained` (computed from the batch before, pools moved last) or `locked` |
//! | `cekpot_spin_batches_relocked_total` | counter | chained spin batches that found a pool otherwise (or needed a drop or refusal) and ran again locked |
//! | `cekpot_player_flags_total{reason}` | counter | players flagged for review (`steady_intervals`) |

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const SECONDS_BUCKETS: &[f64] = &[0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use, with a task that keeps its
/// histograms trimmed.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS))
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics will stay empty");
        }
        describe();
        let upkeep = handle.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(5));
                loop {
                    ticks.tick().await;
                    upkeep.run_upkeep();
                }
            });
        }
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "cekpot_reconciliation_mismatch_ratio",
        "mismatches / checks of the latest reconciliation"
    );
    describe_gauge!("cekpot_reconciliation_mismatches", "mismatches found by the latest reconciliation");
    describe_counter!("cekpot_reconciliation_runs_total", "reconciliation runs");
    describe_counter!("cekpot_contributions_total", "contributions answered, by outcome");
    describe_histogram!("cekpot_contribution_batch_size", Unit::Count, "contributions per group commit");
    describe_histogram!("cekpot_contribution_batch_seconds", Unit::Seconds, "one group commit");
    describe_counter!("cekpot_contribution_batch_failures_total", "batches retried one by one");
    describe_counter!("cekpot_contributions_dropped_total", "queued contributions never written, by reason");
    describe_counter!("cekpot_contribution_batches_total", "batches written, by path (unlocked or locked)");
    describe_counter!("cekpot_awards_total", "awards paid, by trigger mode");
    describe_counter!("cekpot_jackpot_changes_total", "jackpot configuration changes");
    describe_counter!("cekpot_award_rollbacks_total", "awards rolled back");
    describe_counter!("cekpot_spins_total", "spins answered, by outcome (win, no_win, refused)");
    describe_histogram!("cekpot_spin_batch_size", Unit::Count, "spins per group commit");
    describe_histogram!("cekpot_spin_batch_seconds", Unit::Seconds, "one spin batch");
    describe_counter!("cekpot_spin_batch_failures_total", "spin batches retried one by one");
    describe_counter!("cekpot_spins_dropped_total", "queued spins never written, by reason");
    describe_counter!("cekpot_spin_batches_total", "spin batches committed, by path (chained or locked)");
    describe_counter!(
        "cekpot_spin_batches_relocked_total",
        "chained spin batches run again locking the jackpots first"
    );
    describe_counter!("cekpot_player_flags_total", "players flagged for review, by reason");
}

/// A ratio in parts per million as the fraction Prometheus expects.
#[allow(clippy::float_arithmetic)] // a ratio for a gauge, not money
pub fn ratio(ppm: i64) -> f64 {
    ppm as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ratio_in_ppm_becomes_a_fraction() {
        assert_eq!(super::ratio(0), 0.0);
        assert_eq!(super::ratio(250_000), 0.25);
        assert_eq!(super::ratio(1_000_000), 1.0);
    }
}
