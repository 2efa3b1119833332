//! Development only: `/dev/sign-in` signs Telegram `initData` for a test user
//! of your choice with the configured bot token, exactly as Telegram would,
//! so the Mini App and the player API can be tried in a plain browser or with
//! curl. Routed only when `dev.sign_in_page` is on, which start-up refuses
//! when `deployment.environment` is `production`.

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
    Router::new().route("/dev/sign-in", get(page))
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

async fn page(
    State(state): State<AppState>,
    ApiQuery(user): ApiQuery<TestUser>,
) -> Result<Response, ApiError> {
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
    let auth_date = chrono::Utc::now().timestamp().to_string();
    let init_data = sign(&[("user", &user_json), ("auth_date", &auth_date)], bot_token.expose_secret());
    if user.format.as_deref() == Some("json") {
        return Ok(Json(serde_json::json!({ "initData": init_data })).into_response());
    }
    let launch = utf8_percent_encode(&init_data, NON_ALPHANUMERIC).to_string();
    let escape = |text: &str| {
        text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    };
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
<p><a id="launch" href="/#tgWebAppData={launch}">Open the Mini App as this user</a>
(Telegram passes initData to a Mini App as <code>#tgWebAppData=…</code>).</p>
</body></html>"#,
        first_name = escape(&first_name),
        username = escape(username.as_deref().unwrap_or("")),
        language = escape(&language),
        init_data = escape(&init_data),
        host = state.settings.http.addr,
    ))
    .into_response())
}
