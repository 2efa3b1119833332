//! Development only: `/dev/sign-in` signs Telegram `initData` for a test user
//! of your choice with the configured bot token, exactly as Telegram would,
//! so the Mini App and the player API can be tried in a plain browser or with
//! curl; `/dev/telegram` shows the Mini App as Telegram's web client does, in
//! a frame launched with fresh `initData` (the app signs in only inside a
//! Telegram client or its frame). Routed only when `dev.sign_in_page` is on,
//! which start-up refuses when `deployment.environment` is `production`.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::telegram::sign;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use super::extract::ApiQuery;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/sign-in", get(page)).route("/dev/telegram", get(frame))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestUser {
    id: Option<i64>,
    first_name: Option<String>,
    username: Option<String>,
    language_code: Option<String>,
    /// `json`: answer `{"initData": "..."}`, the body `POST /api/auth/telegram` takes.
    format: Option<String>,
}

/// The test user's fields, with defaults, and their `initData` signed now.
struct Signed {
    id: i64,
    first_name: String,
    username: Option<String>,
    language: String,
    init_data: String,
}

fn sign_for(state: &AppState, user: TestUser) -> Result<Signed, ApiError> {
    let Some(bot_token) = &state.settings.telegram.bot_token else {
        return Err(ApiError::new(
            ErrorCode::TelegramNotConfigured,
            "set telegram.bot_token: the page signs with it, as Telegram does",
        ));
    };
    let id = user.id.unwrap_or(100_000_001);
    let first_name = user.first_name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "Test".into());
    let username = user.username.filter(|n| !n.trim().is_empty());
    let language = user.language_code.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "en".into());
    let mut fields = serde_json::json!({ "id": id, "first_name": first_name, "language_code": language });
    if let Some(username) = &username {
        fields["username"] = username.as_str().into();
    }
    let user_json = fields.to_string();
    let now = chrono::Utc::now();
    let auth_date = now.timestamp().to_string();
    // Each launch has its own query id, as Telegram's do.
    let query_id = format!("DEV{}", now.timestamp_nanos_opt().unwrap_or_default());
    let init_data = sign(
        &[("query_id", &query_id), ("user", &user_json), ("auth_date", &auth_date)],
        bot_token.expose_secret(),
    );
    Ok(Signed { id, first_name, username, language, init_data })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The Mini App in a phone-sized frame, launched as Telegram's web client
/// launches it (`#tgWebAppData=…` in the frame's URL).
async fn frame(
    State(state): State<AppState>,
    ApiQuery(user): ApiQuery<TestUser>,
) -> Result<Response, ApiError> {
    let signed = sign_for(&state, user)?;
    let launch = utf8_percent_encode(&signed.init_data, NON_ALPHANUMERIC).to_string();
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cekpot · dev Telegram frame</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>body{{margin:0;background:#17212b;font-family:system-ui,sans-serif;color:#fff}}
p{{margin:.5rem 1rem;font-size:.85rem;opacity:.8}}iframe{{display:block;margin:0 auto;width:390px;max-width:100%;height:calc(100vh - 3rem);border:0;background:#fff}}</style>
</head><body>
<p>Development only: the Mini App as Telegram's web client frames it, signed in as {first_name} ({id}). <a href="/dev/sign-in" style="color:#8cf">Another user</a></p>
<iframe id="mini-app" title="Cekpot Mini App" src="/#tgWebAppData={launch}&amp;tgWebAppVersion=8.0&amp;tgWebAppPlatform=weba"></iframe>
</body></html>"#,
        first_name = escape(&signed.first_name),
        id = signed.id,
    ))
    .into_response())
}

async fn page(
    State(state): State<AppState>,
    ApiQuery(user): ApiQuery<TestUser>,
) -> Result<Response, ApiError> {
    let json = user.format.as_deref() == Some("json");
    let Signed { id, first_name, username, language, init_data } = sign_for(&state, user)?;
    if json {
        return Ok(Json(serde_json::json!({ "initData": init_data })).into_response());
    }
    let frame_query = format!(
        "id={id}&first_name={}&language_code={}{}",
        utf8_percent_encode(&first_name, NON_ALPHANUMERIC),
        utf8_percent_encode(&language, NON_ALPHANUMERIC),
        username
            .as_deref()
            .map(|u| format!("&username={}", utf8_percent_encode(u, NON_ALPHANUMERIC)))
            .unwrap_or_default(),
    );
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cekpot · dev sign-in</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
label{{display:block;margin:.5rem 0}}input{{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}}
textarea{{width:100%;height:7rem;font-family:monospace}}pre{{white-space:pre-wrap;word-break:break-all}}.warn{{background:#fff3cd;padding:.5rem 1rem;border-radius:.5rem}}</style>
</head><body>
<h1>Dev sign-in</h1>
<p class="warn">Development only. This page signs Telegram <code>initData</code> with this server's bot token;
it does not exist when <code>deployment.environment</code> is <code>production</code>.</p>
<form method="get" action="/dev/sign-in">
<label>Telegram user id <input name="id" type="number" value="{id}"></label>
<label>First name <input name="first_name" value="{first_name}"></label>
<label>Username <input name="username" value="{username}"></label>
<label>Language <input name="language_code" value="{language}"></label>
<button type="submit">Sign initData for this user</button>
</form>
<h2>initData</h2>
<textarea id="init-data" readonly>{init_data}</textarea>
<p>Exchange it for a player token:</p>
<pre>curl -s 'http://{host}/dev/sign-in?id={id}&amp;format=json' |
  curl -s http://{host}/api/auth/telegram -H 'content-type: application/json' -d @-</pre>
<p><a id="launch" href="/dev/telegram?{frame_query}">Open the Mini App as this user</a>,
framed as Telegram's web client shows it (Telegram passes a fresh initData to the frame as
<code>#tgWebAppData=…</code>; each initData signs in once).</p>
</body></html>"#,
        first_name = escape(&first_name),
        username = escape(username.as_deref().unwrap_or("")),
        language = escape(&language),
        init_data = escape(&init_data),
        frame_query = escape(&frame_query),
        host = state.settings.http.addr,
    ))
    .into_response())
}
