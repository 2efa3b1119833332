//! The Mini App's side of Telegram, through Telegram's own script
//! (`/telegram-web-app.js`, vendored under `public/`): whether a Telegram
//! client launched the page, and the `initData` it launched it with.
//!
//! A link with `#tgWebAppData=…` opened in an ordinary browser tab is not a
//! launch: Telegram's clients show the Mini App in their web view (which
//! provides `TelegramWebviewProxy`) or, on the web, in a frame of
//! `web.telegram.org` (only Telegram's origins may frame the page: the CSP's
//! `frame-ancestors`). So the page signs in only where one of those holds, and
//! a crafted link cannot sign a player into someone else's account.

use wasm_bindgen::{JsCast, JsValue};

fn get(target: &JsValue, name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(target, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

fn web_app() -> Option<JsValue> {
    get(&get(&leptos::prelude::window().into(), "Telegram")?, "WebApp")
}

/// A Telegram client shows this page: its web view, or a frame (which the CSP
/// allows only to Telegram's web clients).
fn launched_by_telegram() -> bool {
    let window = leptos::prelude::window();
    let proxy = get(&window.clone().into(), "TelegramWebviewProxy").is_some();
    let framed = match window.top() {
        Ok(Some(top)) => !js_sys::Object::is(&top.into(), &window.into()),
        _ => false,
    };
    proxy || framed
}

/// What Telegram launched the page with.
pub struct Launch {
    /// `Telegram.WebApp.initData`, raw, for the server to verify.
    pub init_data: String,
    /// The user it names (unverified: only to match a kept session).
    pub user_id: Option<i64>,
}

/// The launch, when a Telegram client launched the page with `initData`.
pub fn launch() -> Option<Launch> {
    if !launched_by_telegram() {
        return None;
    }
    let web_app = web_app()?;
    let init_data = get(&web_app, "initData")?.as_string().filter(|data| !data.is_empty())?;
    let user_id = get(&web_app, "initDataUnsafe")
        .and_then(|unsafe_data| get(&unsafe_data, "user"))
        .and_then(|user| get(&user, "id"))
        .and_then(|id| id.as_f64())
        .map(|id| id as i64);
    Some(Launch { init_data, user_id })
}

/// Tells the Telegram client the page is ready to be shown.
pub fn ready() {
    let Some(web_app) = web_app() else { return };
    if let Some(ready) = get(&web_app, "ready").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) {
        let _ = ready.call0(&web_app);
    }
}
