//! The slot: the player is signed in with the `initData` Telegram launched
//! the Mini App with, sees their balance, picks a bet and spins. The screen
//! says what a spin did in plain words, and celebrates only a spin that
//! returned more than its bet; there is no autoplay, and after each spin the
//! button rests for the minimum interval the server enforces anyway.

use domain::money::Amount;
use leptos::prelude::*;

use crate::api::SpinReceipt;

/// The bets offered, in micro-units: 0.10 to 5.00.
const BETS: [i64; 5] = [100_000, 500_000, 1_000_000, 2_000_000, 5_000_000];

/// What the screen is doing. The server renders `SigningIn`; the browser
/// build moves it on (hence the allowance in the server build).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "ssr", allow(dead_code))]
pub enum Phase {
    SigningIn,
    /// Opened outside Telegram (no `initData`).
    NoTelegram,
    Ready,
    Spinning,
    /// Signing in failed; the reason is shown.
    Failed(String),
}

/// The state the page and its client code share (`crate::player`, browser only).
#[derive(Clone, Copy)]
#[cfg_attr(feature = "ssr", allow(dead_code))]
pub struct SlotState {
    pub phase: RwSignal<Phase>,
    pub token: RwSignal<Option<String>>,
    pub player: RwSignal<Option<String>>,
    pub balance: RwSignal<Option<(Amount, String)>>,
    pub bet: RwSignal<Amount>,
    pub last: RwSignal<Option<SpinReceipt>>,
    /// A refusal or failure to show, in words.
    pub notice: RwSignal<Option<String>>,
    /// The rest after a spin, before the button takes the next one.
    pub resting: RwSignal<bool>,
    /// A spin sent whose answer never arrived (its idempotency key and bet):
    /// the next tap sends that same spin again, so it is played at most once
    /// and its result is shown.
    pub pending: RwSignal<Option<(String, Amount)>>,
}

#[component]
pub fn SlotPage() -> impl IntoView {
    let state = SlotState {
        phase: RwSignal::new(Phase::SigningIn),
        token: RwSignal::new(None),
        player: RwSignal::new(None),
        balance: RwSignal::new(None),
        bet: RwSignal::new(Amount::from_micros(BETS[2])),
        last: RwSignal::new(None),
        notice: RwSignal::new(None),
        resting: RwSignal::new(false),
        pending: RwSignal::new(None),
    };
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| {
        set_hydrated.set(true);
        #[cfg(any(feature = "hydrate", feature = "csr"))]
        crate::player::sign_in(state);
    });
    let spin = move |_| {
        #[cfg(any(feature = "hydrate", feature = "csr"))]
        crate::player::spin(state);
    };
    let can_spin = move || state.phase.get() == Phase::Ready && !state.resting.get();

    view! {
        <main class="slot" data-hydrated=move || hydrated.get().to_string()>
            <header class="slot__header">
                <a class="slot__back" href="/">"← Jackpots"</a>
                <h1>"Cekpot Slot"</h1>
                <p class="slot__balance" aria-live="polite">
                    {move || match state.balance.get() {
                        Some((amount, currency)) => format!("{currency} {}", amount.display_grouped(2)),
                        None => "–".to_owned(),
                    }}
                </p>
            </header>
            {move || match state.phase.get() {
                Phase::SigningIn => view! { <p class="notice">"Signing in with Telegram…"</p> }.into_any(),
                Phase::NoTelegram => {
                    view! {
                        <p class="notice notice--error" role="alert">
                            "Open the slot from the Cekpot bot in Telegram to play."
                        </p>
                    }
                        .into_any()
                }
                Phase::Failed(reason) => {
                    view! {
                        <p class="notice notice--error" role="alert">"Signing in failed: " {reason}</p>
                    }
                        .into_any()
                }
                Phase::Ready | Phase::Spinning => {
                    view! {
                        <p class="slot__player">
                            {move || state.player.get().map(|name| format!("Playing as {name}"))}
                        </p>
                    }
                        .into_any()
                }
            }}
            <Reels last=state.last />
            <Outcome last=state.last />
            {move || {
                state
                    .notice
                    .get()
                    .map(|text| view! { <p class="notice notice--error slot__notice" role="alert">{text}</p> })
            }}
            <div class="slot__controls">
                <div class="slot__bets" role="radiogroup" aria-label="Bet">
                    {BETS
                        .into_iter()
                        .map(|micros| {
                            let amount = Amount::from_micros(micros);
                            view! {
                                <button
                                    type="button"
                                    class="slot__bet"
                                    role="radio"
                                    aria-checked=move || (state.bet.get() == amount).to_string()
                                    on:click=move |_| state.bet.set(amount)
                                >
                                    {amount.display_with(2)}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
                <button type="button" class="slot__spin" disabled=move || !can_spin() on:click=spin>
                    {move || if state.phase.get() == Phase::Spinning { "Spinning…" } else { "Spin" }}
                </button>
            </div>
            <p class="slot__fine-print">
                "Every bet adds to the jackpots. Results are provably fair: each spin can be recomputed from its seeds once they are rotated and revealed."
            </p>
        </main>
    }
}

/// Five reels of three symbols: the last spin's, or a resting line-up.
#[component]
fn Reels(last: RwSignal<Option<SpinReceipt>>) -> impl IntoView {
    let reels = move || {
        last.get().map(|r| r.reels).unwrap_or_else(|| {
            let rest = ["seven", "bar", "bell"];
            vec![rest.iter().map(|s| (*s).to_owned()).collect(); 5]
        })
    };
    view! {
        <div class="reels" role="img" aria-label=move || describe(&reels())>
            {move || {
                reels()
                    .into_iter()
                    .map(|reel| {
                        view! {
                            <div class="reel">
                                {reel
                                    .into_iter()
                                    .map(|symbol| {
                                        view! {
                                            <span class="reel__symbol" data-symbol=symbol.clone()>
                                                {symbol_face(&symbol)}
                                            </span>
                                        }
                                    })
                                    .collect_view()}
                            </div>
                        }
                    })
                    .collect_view()
            }}
        </div>
    }
}

/// The spin's result in words. A return at or below the bet is not a win.
#[component]
fn Outcome(last: RwSignal<Option<SpinReceipt>>) -> impl IntoView {
    move || {
        last.get().map(|receipt| {
            let returned = Amount::from_micros(receipt.win.micros() + receipt.jackpot_win.micros());
            let (class, text) = if receipt.is_win {
                ("slot__result slot__result--win", format!("You won {}!", receipt.net.display_with(2)))
            } else if returned.micros() > 0 {
                (
                    "slot__result",
                    format!(
                        "Returned {} of your {} bet — no win.",
                        returned.display_with(2),
                        receipt.bet_amount.display_with(2)
                    ),
                )
            } else {
                ("slot__result", "No win this time.".to_owned())
            };
            let contributed: i64 = receipt.contributions.iter().map(|c| c.amount.micros()).sum();
            view! {
                <div class="slot__outcome" data-win=receipt.is_win.to_string()>
                    <p class=class role="status">{text}</p>
                    {receipt
                        .jackpot_awards
                        .iter()
                        .map(|award| {
                            view! {
                                <p class="slot__jackpot">
                                    {format!("Jackpot! {} paid you {}", award.jackpot_id, award.amount.display_with(2))}
                                </p>
                            }
                        })
                        .collect_view()}
                    <p class="slot__meta">
                        {format!(
                            "Spin #{} · {} went to the jackpots · nonce {}",
                            receipt.spin_id,
                            // Every micro-unit: 0.5 % of a 1.00 bet is 0.005, not "0.00".
                            Amount::from_micros(contributed),
                            receipt.fairness.nonce,
                        )}
                    </p>
                </div>
            }
        })
    }
}

/// What a symbol shows: short words, coloured by the stylesheet, so the reels
/// read the same on every device whatever emoji font it has (or lacks).
fn symbol_face(symbol: &str) -> &'static str {
    match symbol {
        "seven" => "7",
        "bar" => "BAR",
        "bell" => "BELL",
        "plum" => "PLUM",
        "orange" => "ORANGE",
        "lemon" => "LEMON",
        "cherry" => "CHERRY",
        _ => "?",
    }
}

fn describe(reels: &[Vec<String>]) -> String {
    let rows: Vec<String> = (0..3)
        .map(|row| reels.iter().filter_map(|reel| reel.get(row).cloned()).collect::<Vec<_>>().join(" "))
        .collect();
    format!("Reels: {}", rows.join(" / "))
}
