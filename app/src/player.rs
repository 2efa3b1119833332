//! The browser side of the player's screens: signing in with the launch
//! Telegram gave the Mini App (`crate::telegram`), keeping the session alive
//! by refresh token, and spinning.
//!
//! The launch's `initData` signs in once; the session's refresh token is kept
//! in `sessionStorage` (this Telegram view only, gone when it closes), so a
//! reload renews the session instead of replaying the launch. An access token
//! that expired is renewed once and the request sent again. A spin whose
//! answer does not arrive (no connection, a time-out, the server busy) is
//! sent again with the same idempotency key — twice, a second then two apart,
//! and then at the player's next tap — so it is played at most once and the
//! player sees its result.

use std::time::Duration;

use domain::money::Amount;
use gloo_net::http::{Request, RequestBuilder, Response};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{ErrorBody, ErrorCode, SpinReceipt, WalletView};
use crate::slot::{Phase, SlotState};
use crate::telegram;

/// How long the spin button rests after a spin: the server's minimum interval.
const REST: Duration = Duration::from_millis(2_500);

const SESSION_ENDED: &str = "Your session ended: reopen the app from Telegram.";

/// How long a spin whose answer did not arrive waits before it is sent again.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// Where the session is kept between reloads of one Telegram view.
const SESSION_KEY: &str = "cekpot.session";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignInBody<'a> {
    init_data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody<'a> {
    refresh_token: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    token: String,
    refresh_token: String,
    player: SignedInPlayer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedInPlayer {
    telegram_user_id: i64,
    first_name: String,
}

/// The session kept in `sessionStorage`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeptSession {
    telegram_user_id: i64,
    refresh_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpinBody {
    bet_amount: Amount,
}

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

fn kept_session() -> Option<KeptSession> {
    let text = storage()?.get_item(SESSION_KEY).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

fn keep_session(signed_in: &SignedIn) {
    let kept = KeptSession {
        telegram_user_id: signed_in.player.telegram_user_id,
        refresh_token: signed_in.refresh_token.clone(),
    };
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(&kept)) {
        let _ = storage.set_item(SESSION_KEY, &text);
    }
}

fn forget_session() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(SESSION_KEY);
    }
}

/// Signs the player in — renewing this view's session if it has one, else
/// with the launch — and reads their balance.
pub fn sign_in(state: SlotState) {
    let Some(launch) = telegram::launch() else {
        state.phase.set(Phase::NoTelegram);
        return;
    };
    telegram::ready();
    leptos::task::spawn_local(async move {
        let renewed = match kept_session() {
            Some(kept) if Some(kept.telegram_user_id) == launch.user_id => {
                renew(&kept.refresh_token).await.ok()
            }
            _ => None,
        };
        let signed_in = match renewed {
            Some(signed_in) => Ok(signed_in),
            None => {
                let body = SignInBody { init_data: &launch.init_data };
                match Request::post("/api/auth/telegram").json(&body) {
                    Ok(request) => answer(request.send().await).await.map_err(String::from),
                    Err(error) => Err(error.to_string()),
                }
            }
        };
        match signed_in {
            Ok(signed_in) => {
                keep_session(&signed_in);
                state.player.set(Some(signed_in.player.first_name));
                state.token.set(Some(signed_in.token));
                refresh_balance(state).await;
                state.phase.set(Phase::Ready);
            }
            Err(reason) => state.phase.set(Phase::Failed(reason)),
        }
    });
}

/// Renews the session with its refresh token (spent by this call).
async fn renew(refresh_token: &str) -> Result<SignedIn, Failure> {
    let request = Request::post("/api/auth/refresh")
        .json(&RefreshBody { refresh_token })
        .map_err(|e| Failure::final_(e.to_string()))?;
    let renewed = answer::<SignedIn>(request.send().await).await;
    match &renewed {
        Ok(signed_in) => keep_session(signed_in),
        Err(_) => forget_session(),
    }
    renewed
}

/// Sends `build(access token)`; if the access token has expired, renews the
/// session once and sends the same request again.
async fn send_signed_in<T: for<'de> Deserialize<'de>>(
    state: SlotState,
    build: impl Fn(&str) -> Result<Request, String>,
) -> Result<T, Failure> {
    let Some(token) = state.token.get_untracked() else {
        return Err(Failure::final_(SESSION_ENDED));
    };
    let first = build(&token).map_err(Failure::final_)?.send().await;
    let expired = matches!(&first, Ok(response) if response.status() == 401);
    if !expired {
        return answer(first).await;
    }
    let Some(kept) = kept_session() else { return answer(first).await };
    let renewed = renew(&kept.refresh_token).await?;
    state.token.set(Some(renewed.token.clone()));
    answer(build(&renewed.token).map_err(Failure::final_)?.send().await).await
}

fn bearer(request: RequestBuilder, token: &str) -> RequestBuilder {
    request.header("authorization", &format!("Bearer {token}"))
}

async fn refresh_balance(state: SlotState) {
    let wallet: Result<WalletView, String> = send_signed_in(state, |token| {
        bearer(Request::get("/api/wallet"), token).build().map_err(|e| e.to_string())
    })
    .await
    .map_err(String::from);
    match wallet {
        Ok(wallet) => state.balance.set(Some((wallet.balance, wallet.currency.to_string()))),
        Err(reason) => state.notice.set(Some(format!("The balance could not be read: {reason}"))),
    }
}

/// One spin with the chosen bet — or, if the last spin's answer never
/// arrived, that spin again (same key, same bet). Refusals are explained, not
/// retried.
pub fn spin(state: SlotState) {
    if state.token.get_untracked().is_none()
        || state.phase.get_untracked() != Phase::Ready
        || state.resting.get_untracked()
    {
        return;
    }
    state.phase.set(Phase::Spinning);
    state.notice.set(None);
    let (key, bet) = match state.pending.get_untracked() {
        Some((key, bet)) => {
            state.bet.set(bet);
            (key, bet)
        }
        None => {
            let key = format!("spin-{}", window().crypto().map(|c| c.random_uuid()).unwrap_or_default());
            (key, state.bet.get_untracked())
        }
    };
    state.pending.set(Some((key.clone(), bet)));
    let body = SpinBody { bet_amount: bet };
    leptos::task::spawn_local(async move {
        let mut retries = RETRY_PAUSES.iter();
        let result: Result<SpinReceipt, Failure> = loop {
            let result = send_signed_in(state, |token| {
                bearer(Request::post("/api/spin"), token)
                    .header("idempotency-key", &key)
                    .json(&body)
                    .map_err(|e| e.to_string())
            })
            .await;
            match (result, retries.next()) {
                (Err(failure), Some(wait)) if failure.transient => pause(*wait).await,
                (result, _) => break result,
            }
        };
        match result {
            Ok(receipt) => {
                state.pending.set(None);
                state.balance.set(Some((receipt.balance, receipt.currency.to_string())));
                state.last.set(Some(receipt));
            }
            Err(failure) if failure.transient => state.notice.set(Some(format!(
                "{} Your spin of {} was not confirmed: tap Spin to send the same spin again (it is never played twice).",
                failure.message,
                bet.display_grouped(2)
            ))),
            Err(failure) => {
                state.pending.set(None);
                state.notice.set(Some(failure.message));
            }
        }
        state.phase.set(Phase::Ready);
        state.resting.set(true);
        set_timeout(move || state.resting.set(false), REST);
    });
}

/// Why a request got no answer to use, in words for the player.
struct Failure {
    message: String,
    /// Nothing says the request was refused: no connection, a time-out, the
    /// server busy. The same request may be sent again.
    transient: bool,
}

impl Failure {
    fn final_(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), transient: false }
    }
}

impl From<Failure> for String {
    fn from(failure: Failure) -> String {
        failure.message
    }
}

/// The body of a 2xx answer, or what went wrong.
async fn answer<T: for<'de> Deserialize<'de>>(sent: Result<Response, gloo_net::Error>) -> Result<T, Failure> {
    let Ok(response) = sent else {
        return Err(Failure {
            message: "The server could not be reached; check your connection.".into(),
            transient: true,
        });
    };
    if response.ok() {
        return response.json().await.map_err(|e| Failure::final_(e.to_string()));
    }
    let status = response.status();
    let transient = matches!(status, 408 | 502 | 503 | 504);
    let message = match response.json::<ErrorBody>().await {
        Ok(error) => explain(error),
        Err(_) => format!("The server answered {status}."),
    };
    Err(Failure { message, transient })
}

/// Waits `duration` without blocking the page.
async fn pause(duration: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, duration.as_millis() as i32);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn explain(error: ErrorBody) -> String {
    match error.code {
        ErrorCode::InitDataUsed => "This launch was used already: reopen the app from Telegram.".into(),
        ErrorCode::TokenMissing | ErrorCode::TokenInvalid | ErrorCode::RefreshTokenInvalid => {
            SESSION_ENDED.into()
        }
        ErrorCode::InsufficientFunds => "Your balance is too low for this bet.".into(),
        ErrorCode::SpinTooSoon => "Take a breath: the next spin is allowed in a moment.".into(),
        ErrorCode::SpinInProgress => "Your last spin is still being played.".into(),
        ErrorCode::SelfExcluded => "You have excluded yourself from play for now.".into(),
        ErrorCode::LossLimitReached => "This spin could pass your daily loss limit.".into(),
        ErrorCode::InitDataStale => "This launch link is too old: reopen the app from Telegram.".into(),
        _ => error.message,
    }
}
