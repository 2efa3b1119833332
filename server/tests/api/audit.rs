//! The audit trail: every write appends a linked record in its own
//! transaction; the database refuses to change or remove records; `server
//! audit verify` names the first broken link; and the shipper seals segments
//! into a real S3-compatible server (moto, started by `make test`) with Object
//! Lock in COMPLIANCE mode, resuming after a crash without gaps or duplicates.

use chrono::{Duration, Utc};
use domain::audit::{decode_segment, link};
use serde_json::{json, Value};
use server::audit::bucket::{Bucket, Put};
use server::audit::shipper::{Seal, Shipper};
use server::audit::{self, verify, Action, Actor, Entry};
use server::config::{AuditSettings, BucketSettings};
use sqlx::PgPool;

use crate::admin::configure;
use crate::helpers::{database_url, spawn_app, spawn_app_with};
use crate::service::{bet, claim, contribute, provider_jackpot, scalar};

/// Each record's (action, actor, body as JSON), in order.
async fn records(pool: &PgPool) -> Vec<(String, String, Value)> {
    let bodies: Vec<(String,)> =
        sqlx::query_as("select body from audit_records order by seq").fetch_all(pool).await.unwrap();
    bodies
        .into_iter()
        .map(|(body,)| {
            let body: Value = serde_json::from_str(&body).unwrap();
            (body["action"].as_str().unwrap().to_owned(), body["actor"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

fn of_action<'a>(records: &'a [(String, String, Value)], action: &str) -> Vec<&'a Value> {
    records.iter().filter(|(a, _, _)| a == action).map(|(_, _, body)| body).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_write_appends_a_record_saying_who_what_and_how_much(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    provider_jackpot(&pool).await;

    let path = "/jackpot/provider-pot/contribute";
    let response = app.service("test-game").post(path, &bet("slot-1", "100"), "c-1").await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let receipt: Value = response.json().await.unwrap();
    let (status, award) =
        claim(&app, "provider-pot", "a-1", json!({ "playerId": "player-1", "sessionId": "s-1", "cycle": 1 }))
            .await;
    assert_eq!(status, 200, "{award}");
    let (status, change) =
        configure(&app, "provider-pot", json!({ "name": "Renamed", "reason": "audit test" })).await;
    assert_eq!(status, 200, "{change}");
    let rollback = format!("/admin/awards/{}/rollback", award["awardId"]);
    let response =
        app.service("test-admin").post(&rollback, &json!({ "reason": "voided round" }), "r-1").await.unwrap();
    assert_eq!(response.status(), 200);
    let response =
        app.service("test-admin").post("/admin/reconciliations", &json!({}), "rc-1").await.unwrap();
    assert_eq!(response.status(), 200);

    let all = records(&pool).await;
    let actions: Vec<&str> = all.iter().map(|(a, _, _)| a.as_str()).collect();
    // The three demo jackpots of a fresh installation come first.
    assert_eq!(
        actions,
        [
            "jackpot_created",
            "jackpot_created",
            "jackpot_created",
            "jackpot_created",
            "contribution_batch",
            "award",
            "config_change",
            "award_rollback",
            "reconciliation"
        ]
    );
    let creators: Vec<&str> = all[..4].iter().map(|(_, actor, _)| actor.as_str()).collect();
    assert_eq!(creators, ["system:demo", "system:demo", "system:demo", "system:test"]);
    assert_eq!(all[3].2["jackpotId"], "provider-pot");
    assert_eq!(all[3].2["afterMicros"], 50_000_000, "the first cycle opens at the seed");

    let batch = of_action(&all, "contribution_batch")[0];
    assert_eq!(batch["actor"], "test-game");
    assert_eq!(batch["detail"]["contributions"]["ids"], json!([receipt["contributionId"]]));
    assert_eq!(batch["detail"]["contributions"]["keyIds"], json!(["test-game"]));
    assert_eq!(batch["detail"]["contributions"]["requestIds"], json!([request_id]));
    // 100 at 1 % is 1.00, of which 80 % reaches the pool: 50.00 → 50.80.
    let pools = &batch["detail"]["pools"];
    assert_eq!(
        (&pools[0]["jackpotId"], &pools[0]["beforeMicros"], &pools[0]["afterMicros"]),
        (&json!("provider-pot"), &json!(50_000_000), &json!(50_800_000))
    );

    let award_record = of_action(&all, "award")[0];
    assert_eq!(
        (&award_record["actor"], &award_record["beforeMicros"], &award_record["afterMicros"]),
        (&json!("test-game"), &json!(50_800_000), &json!(50_000_000)),
        "the award locks in 50.80 and the next cycle opens at the seed"
    );
    assert_eq!(award_record["detail"]["awardId"], award["awardId"]);
    assert!(award_record["requestId"].as_str().is_some_and(|id| !id.is_empty()));

    let change_record = of_action(&all, "config_change")[0];
    assert_eq!(change_record["actor"], "test-admin");
    assert_eq!(change_record["detail"]["before"]["name"], "provider-pot");
    assert_eq!(change_record["detail"]["after"]["name"], "Renamed");
    assert_eq!(change_record["detail"]["reason"], "audit test");

    let rollback_record = of_action(&all, "award_rollback")[0];
    assert_eq!(
        (&rollback_record["actor"], &rollback_record["beforeMicros"], &rollback_record["afterMicros"]),
        (&json!("test-admin"), &json!(50_800_000), &json!(0)),
        "the wallet held 50.80 and holds nothing after"
    );
    assert_eq!(rollback_record["detail"]["reason"], "voided round");
    assert_eq!(of_action(&all, "reconciliation")[0]["detail"]["mismatches"], 0);

    let report = verify::database(&pool).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!((report.records, report.last_seq), (9, 9));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_record_covers_every_contribution_of_the_batch(pool: PgPool) {
    // A long batch window so that concurrent contributions share batches.
    let app = spawn_app_with(pool.clone(), |s| s.engine.batch_window_us = 50_000).await;
    provider_jackpot(&pool).await;
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..40 {
        let client = app.service("test-game");
        calls.spawn(async move {
            let body = json!({ "gameId": "slot-1", "playerId": format!("p-{n}"), "betAmount": "1", "currency": "CHIPS" });
            let response = client.post("/jackpot/provider-pot/contribute", &body, &format!("k-{n}")).await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["contributionId"].as_i64().unwrap()
        });
    }
    let mut ids: Vec<i64> = calls.join_all().await;
    ids.sort_unstable();

    let all = records(&pool).await;
    let batches = of_action(&all, "contribution_batch");
    let mut covered: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b["detail"]["contributions"]["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap())
        })
        .collect();
    covered.sort_unstable();
    assert_eq!(covered, ids, "every contribution id is in exactly one batch record");
    assert!(batches.len() < 40, "contributions shared batches ({} records for 40)", batches.len());
    let stored = scalar(&pool, "select count(*) from jackpot_contributions where key_id = 'test-game'").await;
    assert_eq!(stored, 40, "each contribution row names its key");
}

/// The chain verifies, and the batch records name every contribution id
/// exactly once, and every award record names a contribution or a claim.
pub async fn assert_trail_covers_every_contribution(pool: &PgPool) {
    let report = verify::database(pool).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    let all = records(pool).await;
    let mut covered: Vec<i64> = of_action(&all, "contribution_batch")
        .iter()
        .flat_map(|b| {
            b["detail"]["contributions"]["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap())
        })
        .collect();
    covered.sort_unstable();
    let stored: Vec<i64> =
        sqlx::query_scalar("select id from jackpot_contributions order by id").fetch_all(pool).await.unwrap();
    assert_eq!(covered, stored, "every contribution id in exactly one batch record");
    let awards = scalar(pool, "select count(*) from jackpot_awards").await;
    assert_eq!(of_action(&all, "award").len() as i64, awards, "one award record per award");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_drop_inside_a_batch_is_recorded_with_every_contribution_around_it(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.engine.batch_window_us = 50_000).await;
    // Must-drop between 10 and 12: bets of 100 at 1 % fill it within a few
    // contributions, so drops fall inside batches of concurrent contributions.
    crate::service::create_jackpot(
        &pool,
        crate::service::JackpotSpec {
            id: "quick-drop",
            trigger: domain::jackpot::TriggerMode::MustDrop,
            seed: "10.00",
            max: "12.00",
            rate_ppm: 10_000,
            reserve_ppm: 0,
            min_bet: "0.10",
        },
    )
    .await;
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..30 {
        let client = app.service("test-game");
        calls.spawn(async move {
            let body = json!({ "gameId": "slot-1", "playerId": format!("p-{n}"), "betAmount": "100", "currency": "CHIPS" });
            client.post("/jackpot/quick-drop/contribute", &body, &format!("k-{n}")).await.unwrap().status()
        });
    }
    assert!(calls.join_all().await.iter().all(|s| s.as_u16() == 200));
    let awards = scalar(&pool, "select count(*) from jackpot_awards where jackpot_id = 'quick-drop'").await;
    assert!(awards >= 10, "30 contributions of 1.00 drop a 10–12 pool at least 10 times ({awards})");
    assert_trail_covers_every_contribution(&pool).await;

    let all = records(&pool).await;
    let closed: Vec<&Value> = of_action(&all, "contribution_batch")
        .iter()
        .flat_map(|b| b["detail"]["pools"].as_array().unwrap().iter())
        .filter(|p| p["closed"] == true)
        .collect();
    assert_eq!(closed.len() as i64, awards, "each dropped cycle appears in its batch's pools");
    for award in of_action(&all, "award") {
        let cycle = &award["detail"]["cycle"];
        let pool_entry =
            closed.iter().find(|p| &p["cycle"] == cycle).expect("the dropped cycle is in a batch record");
        assert_eq!(pool_entry["afterMicros"], award["beforeMicros"], "closed at the awarded amount");
    }
}

/// Appends `n` records through the database's own function.
async fn append_records(pool: &PgPool, n: i64) {
    let mut conn = pool.acquire().await.unwrap();
    for i in 0..n {
        let entry = Entry {
            actor: Actor::system("test"),
            action: Action::Reconciliation,
            jackpot_id: None,
            before_micros: Some(i),
            after_micros: Some(i + 1),
            detail: json!({ "n": i }),
        };
        audit::append(&mut conn, &[entry]).await.unwrap();
    }
}

/// `code` is the SQLSTATE an error carries.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_refuses_to_change_or_remove_records(pool: PgPool) {
    append_records(&pool, 3).await;
    sqlx::query(
        "insert into audit_segments (number, first_seq, last_seq, object_key, object_sha256, last_hash, retain_until)
         values (1, 1, 3, 'k', '\\x00', '\\x00', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    for statement in [
        "update audit_records set body = '{}' where seq = 2",
        "delete from audit_records where seq = 3",
        "truncate audit_records",
        "update audit_segments set last_seq = 2",
        "delete from audit_segments",
        "truncate audit_segments",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.expect_err(statement);
        assert_eq!(sqlstate(&error).as_deref(), Some("CK003"), "{statement}: {error}");
    }
    // Not even with replication's role, which skips ordinary triggers.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("set session_replication_role = replica").execute(&mut *conn).await.unwrap();
    let error = sqlx::query("delete from audit_records").execute(&mut *conn).await.unwrap_err();
    assert_eq!(sqlstate(&error).as_deref(), Some("CK003"));
    assert_eq!(scalar(&pool, "select count(*) from audit_records").await, 3);
}

/// Changes a record the only way left: as a superuser who disables the trigger.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table audit_records disable trigger audit_records_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table audit_records enable always trigger audit_records_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// `server audit verify` as an operator runs it: (exit code, output).
pub(crate) fn verify_command(pool: &PgPool, bucket: Option<&BucketSettings>) -> (i32, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .args(["audit", "verify"])
        .env("DATABASE_URL", database_url(pool))
        .env("CEKPOT_LOG__FORMAT", "json");
    if let Some(bucket) = bucket {
        command
            .env("CEKPOT_AUDIT__BUCKET__NAME", &bucket.name)
            .env("CEKPOT_AUDIT__BUCKET__ENDPOINT", bucket.endpoint.as_deref().unwrap())
            .env("CEKPOT_AUDIT__BUCKET__PATH_STYLE", "true")
            .env("CEKPOT_AUDIT__BUCKET__ACCESS_KEY_ID", "test")
            .env("CEKPOT_AUDIT__BUCKET__SECRET_ACCESS_KEY", "test");
    }
    let output = command.output().expect("the server binary runs");
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_names_the_first_record_a_superuser_changed(pool: PgPool) {
    append_records(&pool, 6).await;
    let (code, output) = verify_command(&pool, None);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("database: 6 records, chain intact up to record 6"), "{output}");

    tamper(&pool, r#"update audit_records set body = replace(body, '"afterMicros" : 3', '"afterMicros" : 300') where seq = 3"#)
        .await;
    let (code, output) = verify_command(&pool, None);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("BROKEN at record 3"), "{output}");
    assert!(output.contains("the record was changed"), "{output}");
}

/// Changes record `seq`'s body (`from` → `to`) and, as a careful tamperer
/// would, its hash too, so that the record is consistent in itself.
async fn rehash(pool: &PgPool, seq: i64, from: &str, to: &str) {
    let (body, prev): (String, Vec<u8>) =
        sqlx::query_as("select body, prev_hash from audit_records where seq = $1")
            .bind(seq)
            .fetch_one(pool)
            .await
            .unwrap();
    let forged = body.replace(from, to);
    assert_ne!(forged, body, "{from:?} is in record {seq}");
    let hash = hex::encode(link(&prev, &forged));
    tamper(
        pool,
        &format!("update audit_records set body = '{forged}', hash = '\\x{hash}' where seq = {seq}"),
    )
    .await;
}

/// The database's first broken record and why, as `verify` finds it.
async fn first_break(pool: &PgPool) -> (i64, String) {
    let report = verify::database(pool).await.unwrap();
    match (report.broken_seq, report.first_break) {
        (Some(seq), Some(why)) => (seq, why),
        _ => panic!("the chain verified: {} records", report.records),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rehashed_record_is_caught_by_the_next_link(pool: PgPool) {
    append_records(&pool, 6).await;
    rehash(&pool, 4, r#""beforeMicros" : 3"#, r#""beforeMicros" : 9"#).await;
    let (seq, why) = first_break(&pool).await;
    assert_eq!(seq, 5, "{why}");
    assert!(why.contains("does not link to the record before it"), "{why}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_removed_record_is_a_gap(pool: PgPool) {
    append_records(&pool, 4).await;
    tamper(&pool, "delete from audit_records where seq = 2").await;
    let (seq, why) = first_break(&pool).await;
    assert_eq!(seq, 2, "{why}");
    assert!(why.contains("record 2 is missing"), "{why}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rehashed_last_record_is_caught_by_the_chain_head(pool: PgPool) {
    append_records(&pool, 4).await;
    rehash(&pool, 4, r#""afterMicros" : 4"#, r#""afterMicros" : 40"#).await;
    let (seq, why) = first_break(&pool).await;
    assert_eq!(seq, 4, "{why}");
    assert!(why.contains("differs between the last record and the chain's head"), "{why}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_removed_last_record_is_caught_by_the_chain_head(pool: PgPool) {
    append_records(&pool, 4).await;
    tamper(&pool, "delete from audit_records where seq = 4").await;
    let (seq, why) = first_break(&pool).await;
    assert_eq!(seq, 4, "{why}");
    assert!(why.contains("the last ones are missing"), "{why}");
}

// ---- Shipping to the WORM bucket (moto) ------------------------------------

fn s3_url() -> String {
    std::env::var("TEST_S3_URL")
        .expect("TEST_S3_URL: run the tests through `make test`, which starts a local S3 server (moto)")
}

/// A bucket of its own for each test, created with Object Lock.
fn bucket_settings() -> BucketSettings {
    let name = format!("audit-{}", uuid::Uuid::new_v4().simple());
    toml_bucket(&name)
}

fn toml_bucket(name: &str) -> BucketSettings {
    BucketSettings {
        name: name.to_owned(),
        endpoint: Some(s3_url()),
        region: "us-east-1".into(),
        prefix: "audit/".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".to_owned().into(),
        path_style: true,
        create: true,
    }
}

fn audit_settings(bucket: &BucketSettings, segment_records_max: i64) -> AuditSettings {
    AuditSettings {
        segment_records_max,
        segment_bytes_max: 8 << 20,
        segment_age_max_s: 3600,
        ship_interval_ms: 50,
        retain_days: 1827,
        bucket: Some(bucket.clone()),
    }
}

async fn shipper(pool: &PgPool, bucket: &BucketSettings, segment_records_max: i64) -> Shipper {
    let shipper = Shipper::new(pool.clone(), audit_settings(bucket, segment_records_max)).unwrap();
    shipper.ensure_bucket().await.unwrap();
    shipper
}

#[sqlx::test(migrations = "../migrations")]
async fn segments_cover_the_chain_and_are_locked_for_five_years(pool: PgPool) {
    let settings = bucket_settings();
    let shipper = shipper(&pool, &settings, 10).await;
    append_records(&pool, 25).await;

    let shipped = shipper.ship(Seal::WhenDue).await.unwrap();
    let ranges: Vec<(i64, i64, i64)> = shipped.iter().map(|s| (s.number, s.first_seq, s.last_seq)).collect();
    assert_eq!(ranges, [(1, 1, 10), (2, 11, 20)], "full segments ship; the young partial one waits");
    let shipped = shipper.ship(Seal::Now).await.unwrap();
    assert_eq!(
        shipped.iter().map(|s| (s.number, s.first_seq, s.last_seq)).collect::<Vec<_>>(),
        [(3, 21, 25)]
    );
    assert!(shipper.ship(Seal::Now).await.unwrap().is_empty(), "nothing is shipped twice");

    let bucket = shipper.bucket();
    let key = bucket.segment_key(2);
    assert_eq!(key, "audit/segments/000000000002.jsonl");
    let lock = bucket.lock(&key, None).await.unwrap();
    assert_eq!(lock.mode.as_deref(), Some("COMPLIANCE"));
    let until = lock.retain_until.unwrap();
    assert!(until > Utc::now() + Duration::days(5 * 365 + 1), "locked until {until}");

    let records = decode_segment(&bucket.get(&key, None).await.unwrap().unwrap()).unwrap();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), (11..=20).collect::<Vec<_>>());
    let stored: Vec<u8> =
        sqlx::query_scalar("select hash from audit_records where seq = 20").fetch_one(&pool).await.unwrap();
    assert_eq!(records[9].hash, stored);

    let report = verify::bucket(bucket, Some(&pool)).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!((report.segments, report.records, report.last_seq), (Some(3), 25, 25));
}

#[sqlx::test(migrations = "../migrations")]
async fn segments_are_capped_by_bytes_as_well_as_by_records(pool: PgPool) {
    let settings = bucket_settings();
    let mut audit = audit_settings(&settings, 1_000);
    audit.segment_bytes_max = 1_024;
    let shipper = Shipper::new(pool.clone(), audit).unwrap();
    shipper.ensure_bucket().await.unwrap();
    append_records(&pool, 30).await;
    let body_bytes: Vec<i64> =
        sqlx::query_scalar("select octet_length(body)::bigint from audit_records order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let shipped = shipper.ship(Seal::Now).await.unwrap();
    assert!(shipped.len() > 1, "30 records of ~{} bytes do not fit one 1 KiB segment", body_bytes[0]);
    let mut next = 1;
    for segment in &shipped {
        assert_eq!(segment.first_seq, next, "no gap, no overlap");
        let bytes: i64 = body_bytes[(segment.first_seq - 1) as usize..segment.last_seq as usize].iter().sum();
        let last = body_bytes[(segment.last_seq - 1) as usize];
        assert!(bytes - last < 1_024, "a segment stops at the record that reaches the cap");
        next = segment.last_seq + 1;
    }
    assert_eq!(next, 31, "every record shipped");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_locked_segment_cannot_be_overwritten_or_deleted(pool: PgPool) {
    let settings = bucket_settings();
    let shipper = shipper(&pool, &settings, 5).await;
    append_records(&pool, 5).await;
    let segment = shipper.ship(Seal::WhenDue).await.unwrap().pop().unwrap();
    let bucket = shipper.bucket();
    let original = bucket.get(&segment.key, None).await.unwrap().unwrap();

    // A second locked write of the key is refused outright.
    let again =
        bucket.put_locked(&segment.key, b"forged".to_vec(), Utc::now() + Duration::days(1)).await.unwrap();
    assert_eq!(again, Put::Exists);
    // Deleting the locked version is refused by the bucket.
    let version = segment.version_id.clone().expect("a versioned bucket names the version");
    let refused = bucket.delete_version(&segment.key, &version).await.unwrap_err();
    assert!(refused.to_string().contains("AccessDenied"), "{refused}");
    // A plain overwrite only adds a newer version; the locked one stays as it was.
    bucket.put_plain(&segment.key, b"forged".to_vec()).await.unwrap();
    assert_eq!(bucket.get(&segment.key, Some(&version)).await.unwrap().unwrap(), original);

    let report = verify::bucket(bucket, Some(&pool)).await.unwrap();
    assert!(report.intact(), "the locked original is what is verified: {}", report.summary());
    assert!(report.notes.iter().any(|n| n.contains("written 1 more time")), "{:?}", report.notes);
}

#[sqlx::test(migrations = "../migrations")]
async fn shipping_resumes_after_a_crash_without_gaps_or_duplicates(pool: PgPool) {
    let settings = bucket_settings();
    append_records(&pool, 25).await;
    // A run that wrote segment 1 to the bucket and stopped before recording it.
    let crashed = shipper(&pool, &settings, 10).await;
    let sealed = crashed.seal_and_put(Seal::WhenDue).await.unwrap().unwrap();
    assert!(matches!(sealed.put, Put::Written { .. }));
    assert_eq!(sealed.records.len(), 10);
    assert_eq!(scalar(&pool, "select count(*) from audit_segments").await, 0);
    append_records(&pool, 5).await;

    // The next run records what it finds instead of writing it again.
    let shipped = shipper(&pool, &settings, 10).await.ship(Seal::Now).await.unwrap();
    let summary: Vec<(i64, i64, i64, bool)> =
        shipped.iter().map(|s| (s.number, s.first_seq, s.last_seq, s.adopted)).collect();
    assert_eq!(summary, [(1, 1, 10, true), (2, 11, 20, false), (3, 21, 30, false)]);

    let originals = Bucket::new(&settings).originals().await.unwrap();
    assert_eq!(originals.len(), 3, "one object per segment");
    assert!(originals.iter().all(|o| o.later_versions == 0), "no key was written twice: {originals:?}");
    let report = verify::bucket(&Bucket::new(&settings), Some(&pool)).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!((report.records, report.last_seq), (30, 30), "every record once, none missing");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_partial_segment_left_by_a_crash_is_adopted_with_its_own_boundaries(pool: PgPool) {
    let settings = bucket_settings();
    append_records(&pool, 7).await;
    // The crashed run had sealed 7 records by age (segments hold up to 10).
    let crashed = shipper(&pool, &settings, 10).await;
    let sealed = crashed.seal_and_put(Seal::Now).await.unwrap().unwrap();
    assert_eq!(sealed.records.len(), 7);
    append_records(&pool, 10).await;

    let shipped = shipper(&pool, &settings, 10).await.ship(Seal::Now).await.unwrap();
    let summary: Vec<(i64, i64, i64, bool)> =
        shipped.iter().map(|s| (s.number, s.first_seq, s.last_seq, s.adopted)).collect();
    assert_eq!(summary, [(1, 1, 7, true), (2, 8, 17, false)]);
    let report = verify::bucket(&Bucket::new(&settings), Some(&pool)).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!(report.records, 17);
}

#[sqlx::test(migrations = "../migrations")]
async fn two_instances_shipping_at_once_ship_each_record_once(pool: PgPool) {
    let settings = bucket_settings();
    append_records(&pool, 45).await;
    let (a, b) = (shipper(&pool, &settings, 5).await, shipper(&pool, &settings, 5).await);
    let (from_a, from_b) = tokio::join!(a.ship(Seal::Now), b.ship(Seal::Now));
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!(from_a.len() + from_b.len(), 9, "9 segments of 5, each shipped by one instance");
    assert!(from_a.is_empty() || from_b.is_empty(), "one instance holds the lease at a time");
    let originals = Bucket::new(&settings).originals().await.unwrap();
    assert_eq!(originals.len(), 9);
    assert!(originals.iter().all(|o| o.later_versions == 0));
    let report = verify::bucket(&Bucket::new(&settings), Some(&pool)).await.unwrap();
    assert_eq!((report.intact(), report.records), (true, 45), "{}", report.summary());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_bucket_catches_a_database_chain_rewritten_from_some_record_on(pool: PgPool) {
    let settings = bucket_settings();
    append_records(&pool, 8).await;
    shipper(&pool, &settings, 4).await.ship(Seal::Now).await.unwrap();

    // A superuser rewrites record 6 and re-links every record after it, and
    // the head: the links of the database's chain hold again.
    let rows: Vec<(i64, Vec<u8>, String)> =
        sqlx::query_as("select seq, prev_hash, body from audit_records where seq >= 6 order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut prev = rows[0].1.clone();
    let mut sql = String::new();
    for (seq, _, body) in &rows {
        let body = if *seq == 6 {
            body.replace(r#""afterMicros" : 6"#, r#""afterMicros" : 60"#)
        } else {
            body.clone()
        };
        let hash = link(&prev, &body);
        sql += &format!(
            "update audit_records set body = '{body}', prev_hash = '\\x{}', hash = '\\x{}' where seq = {seq};",
            hex::encode(&prev),
            hex::encode(hash)
        );
        prev = hash.to_vec();
    }
    sql += &format!("update audit_chain_head set last_hash = '\\x{}';", hex::encode(&prev));
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table audit_records disable trigger audit_records_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql(&sql).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table audit_records enable always trigger audit_records_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The links hold; what gives the rewrite away in the database is the
    // last hash audit_segments kept of the shipped segment (records 5–8).
    let database = verify::database(&pool).await.unwrap();
    assert_eq!(database.broken_seq, Some(8), "{}", database.summary());
    assert!(database.first_break.unwrap().contains("its shipped segment"));
    // The bucket names the very record.
    let (code, output) = verify_command(&pool, Some(&settings));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("database: BROKEN at record 8"), "{output}");
    assert!(output.contains("bucket: BROKEN at record 6"), "{output}");
    assert!(output.contains("differs between the bucket and the database"), "{output}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_running_server_ships_what_its_writes_append(pool: PgPool) {
    let settings = bucket_settings();
    let bucket = settings.clone();
    let app = spawn_app_with(pool.clone(), move |s| {
        s.audit = AuditSettings { segment_age_max_s: 0, ..audit_settings(&bucket, 100) };
    })
    .await;
    provider_jackpot(&pool).await;
    for n in 0..3 {
        let (status, _) = contribute(&app, "provider-pot", &format!("k-{n}"), bet("slot-1", "10")).await;
        assert_eq!(status, 200);
    }
    let head = scalar(&pool, "select last_seq from audit_chain_head").await;
    assert_eq!(head, 7, "four jackpots (three of them the demo's) and three batches");
    let shipped = crate::helpers::eventually(10, || async {
        scalar(&pool, "select coalesce(max(last_seq), 0) from audit_segments").await == head
    })
    .await;
    assert!(shipped, "the server's shipper sealed and shipped every record");
    let report = verify::bucket(&Bucket::new(&settings), Some(&pool)).await.unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!(report.records, 7);
}
