//! Players sign in with Telegram `initData` (`POST /api/auth/telegram`).

use domain::telegram::sign;
use serde_json::{json, Value};
use server::http::auth::Tokens;
use sqlx::PgPool;

use crate::helpers::{spawn_app_with, TestApp};
use crate::service::scalar;

const BOT_TOKEN: &str = "7000000001:AAcekpot-test_bot_token";
const JWT_SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

async fn app(pool: &PgPool) -> TestApp {
    spawn_app_with(pool.clone(), |s| {
        s.telegram.bot_token = Some(BOT_TOKEN.to_owned().into());
        s.auth.jwt_secret = Some(JWT_SECRET.to_owned().into());
    })
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `initData` as Telegram builds it for a user, signed with the test bot's
/// token; each call is a new launch (its own `query_id`).
fn init_data(user: &Value, auth_date: i64) -> String {
    let (user, auth_date) = (user.to_string(), auth_date.to_string());
    sign(&[("query_id", &launch_id()), ("user", &user), ("auth_date", &auth_date)], BOT_TOKEN)
}

/// A `query_id` no other launch of this test run has.
pub fn launch_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("AAHdF6IQ{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// `POST /api/auth/telegram` with `init_data`: status and body.
pub async fn sign_in(app: &TestApp, init_data: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/auth/telegram"))
        .json(&json!({ "initData": init_data }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_player_signs_in_with_fresh_init_data_and_gets_a_token(pool: PgPool) {
    let app = app(&pool).await;
    let user = json!({ "id": 279058397, "first_name": "Ayla", "last_name": "Məmmədova", "username": "ayla",
                       "language_code": "az", "is_premium": true });
    let (status, body) = sign_in(&app, &init_data(&user, now())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["player"]["telegramUserId"], 279058397);
    assert_eq!(body["player"]["lastName"], "Məmmədova");
    assert_eq!(body["player"]["isPremium"], true);

    let settings = server::config::AuthSettings {
        jwt_secret: Some(JWT_SECRET.to_owned().into()),
        ..crate::helpers::test_settings().auth
    };
    let claims =
        Tokens::new(&settings).unwrap().check(body["token"].as_str().unwrap()).expect("a valid token");
    assert_eq!(claims.sub, body["player"]["id"].to_string());
    assert_eq!(claims.tg, 279058397);
    assert_eq!(claims.exp - claims.iat, 900, "short-lived: the configured 15 minutes");
    let other = server::config::AuthSettings {
        jwt_secret: Some("x".repeat(32).into()),
        ..crate::helpers::test_settings().auth
    };
    assert!(
        Tokens::new(&other).unwrap().check(body["token"].as_str().unwrap()).is_none(),
        "another key refuses it"
    );

    // Signing in again updates the profile and keeps the player.
    let renamed =
        json!({ "id": 279058397, "first_name": "Ayla", "username": "ayla_m", "language_code": "en" });
    let (status, again) = sign_in(&app, &init_data(&renamed, now())).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["player"]["id"], body["player"]["id"]);
    assert_eq!(
        (&again["player"]["username"], &again["player"]["isPremium"]),
        (&json!("ayla_m"), &json!(false))
    );
    assert_eq!(scalar(&pool, "select count(*) from players").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_init_data_gets_401_with_its_own_code_and_writes_nothing(pool: PgPool) {
    let app = app(&pool).await;
    let user = json!({ "id": 42, "first_name": "Kamran" });
    let good = init_data(&user, now());
    let without_hash = good.rsplit_once("&hash=").unwrap().0.to_owned();
    let tampered = good.replace("Kamran", "Kamrah");
    assert_ne!(tampered, good);
    let cases = [
        (without_hash.clone(), "init_data_bad_hash"),
        (format!("{without_hash}&hash=not-hex"), "init_data_bad_hash"),
        (tampered, "init_data_bad_signature"),
        (
            sign(&[("user", &user.to_string()), ("auth_date", &now().to_string())], "1:another-bot"),
            "init_data_bad_signature",
        ),
        (init_data(&user, now() - 2 * 86_400), "init_data_stale"),
        ("user=%zz&hash=00".to_owned(), "init_data_malformed"),
        (format!("{good}&auth_date=1"), "init_data_malformed"),
        (String::new(), "init_data_malformed"),
    ];
    for (init_data, code) in cases {
        let (status, body) = sign_in(&app, &init_data).await;
        assert_eq!((status, body["code"].as_str()), (401, Some(code)), "{init_data}: {body}");
    }
    assert_eq!(scalar(&pool, "select count(*) from players").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn without_a_bot_token_sign_in_is_unavailable(pool: PgPool) {
    let app = crate::helpers::spawn_app(pool.clone()).await;
    let (status, body) = sign_in(&app, "user=%7B%7D&auth_date=1&hash=00").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("telegram_not_configured")), "{body}");
}
