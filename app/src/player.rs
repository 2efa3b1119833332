//! The browser side of the player's screens: signing in with the `initData`
//! Telegram launched the Mini App with, and spinning. Telegram passes
//! `initData` in the launch URL's fragment (`#tgWebAppData=…`); it is read
//! once, when the app starts, and kept for the page's life, so moving from the
//! lobby to the slot keeps it.

use std::cell::RefCell;
use std::time::Duration;

use domain::money::Amount;
use gloo_net::http::{Request, Response};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{ErrorBody, ErrorCode, SpinReceipt, WalletView};
use crate::slot::{Phase, SlotState};

thread_local! {
    static INIT_DATA: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// How long the spin button rests after a spin: the server's minimum interval.
const REST: Duration = Duration::from_millis(2_500);

/// Keeps the launch URL's `tgWebAppData`, if there is one.
pub fn remember_launch() {
    let Ok(hash) = window().location().hash() else { return };
    let found = hash.trim_start_matches('#').split('&').find_map(|pair| {
        let value = pair.strip_prefix("tgWebAppData=")?;
        percent_encoding::percent_decode_str(value).decode_utf8().ok().map(|v| v.into_owned())
    });
    if let Some(init_data) = found {
        INIT_DATA.with(|kept| *kept.borrow_mut() = Some(init_data));
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignInBody<'a> {
    init_data: &'a str,
}

#[derive(Deserialize)]
struct SignedIn {
    token: String,
    player: SignedInPlayer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedInPlayer {
    first_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpinBody {
    bet_amount: Amount,
}

/// Signs the player in and reads their balance.
pub fn sign_in(state: SlotState) {
    remember_launch();
    let Some(init_data) = INIT_DATA.with(|kept| kept.borrow().clone()) else {
        state.phase.set(Phase::NoTelegram);
        return;
    };
    leptos::task::spawn_local(async move {
        let signed_in: Result<SignedIn, String> = async {
            let request = Request::post("/api/auth/telegram").json(&SignInBody { init_data: &init_data });
            answer(request.map_err(|e| e.to_string())?.send().await).await
        }
        .await;
        match signed_in {
            Ok(signed_in) => {
                state.player.set(Some(signed_in.player.first_name));
                state.token.set(Some(signed_in.token.clone()));
                refresh_balance(state, &signed_in.token).await;
                state.phase.set(Phase::Ready);
            }
            Err(reason) => state.phase.set(Phase::Failed(reason)),
        }
    });
}

async fn refresh_balance(state: SlotState, token: &str) {
    let wallet: Result<WalletView, String> =
        answer(Request::get("/api/wallet").header("authorization", &format!("Bearer {token}")).send().await)
            .await;
    match wallet {
        Ok(wallet) => state.balance.set(Some((wallet.balance, wallet.currency.to_string()))),
        Err(reason) => state.notice.set(Some(format!("The balance could not be read: {reason}"))),
    }
}

/// One spin with the chosen bet. Refusals are explained, not retried.
pub fn spin(state: SlotState) {
    let Some(token) = state.token.get_untracked() else { return };
    if state.phase.get_untracked() != Phase::Ready || state.resting.get_untracked() {
        return;
    }
    state.phase.set(Phase::Spinning);
    state.notice.set(None);
    let body = SpinBody { bet_amount: state.bet.get_untracked() };
    let key = format!("spin-{}", window().crypto().map(|c| c.random_uuid()).unwrap_or_default());
    leptos::task::spawn_local(async move {
        let result: Result<SpinReceipt, String> = async {
            let request = Request::post("/api/spin")
                .header("authorization", &format!("Bearer {token}"))
                .header("idempotency-key", &key)
                .json(&body)
                .map_err(|e| e.to_string())?;
            answer(request.send().await).await
        }
        .await;
        match result {
            Ok(receipt) => {
                state.balance.set(Some((receipt.balance, receipt.currency.to_string())));
                state.last.set(Some(receipt));
            }
            Err(reason) => state.notice.set(Some(reason)),
        }
        state.phase.set(Phase::Ready);
        state.resting.set(true);
        set_timeout(move || state.resting.set(false), REST);
    });
}

/// The body of a 2xx answer, or what went wrong in words for the player.
async fn answer<T: for<'de> Deserialize<'de>>(sent: Result<Response, gloo_net::Error>) -> Result<T, String> {
    let response = sent.map_err(|_| "the server could not be reached; check your connection".to_owned())?;
    if response.ok() {
        return response.json().await.map_err(|e| e.to_string());
    }
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(error) => Err(explain(error)),
        Err(_) => Err(format!("the server answered {status}")),
    }
}

fn explain(error: ErrorBody) -> String {
    match error.code {
        ErrorCode::InsufficientFunds => "Your balance is too low for this bet.".into(),
        ErrorCode::SpinTooSoon => "Take a breath: the next spin is allowed in a moment.".into(),
        ErrorCode::SpinInProgress => "Your last spin is still being played.".into(),
        ErrorCode::SelfExcluded => "You have excluded yourself from play for now.".into(),
        ErrorCode::LossLimitReached => "This spin could pass your daily loss limit.".into(),
        ErrorCode::TokenMissing | ErrorCode::TokenInvalid => {
            "Your session ended: reopen the app from Telegram.".into()
        }
        ErrorCode::InitDataStale => "This launch link is too old: reopen the app from Telegram.".into(),
        _ => error.message,
    }
}
