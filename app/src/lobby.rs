//! The lobby: every live jackpot as a card with its pool and a progress bar
//! towards the maximum, and tier filters that work once the page has hydrated.

use domain::jackpot::Tier;
use leptos::prelude::*;

use crate::api::JackpotSummary;
use crate::feed::load_jackpots;

#[component]
pub fn LobbyPage() -> impl IntoView {
    let jackpots = Resource::new(|| (), |_| load_jackpots());
    let (filter, set_filter) = signal(None::<Tier>);
    // Effects run only in the browser, after hydration: end-to-end tests wait
    // for this marker before they touch a control.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <main class="lobby" data-hydrated=move || hydrated.get().to_string()>
            <header class="lobby__header">
                <h1>"Cekpot"</h1>
                <p class="lobby__tagline">"Live progressive jackpots"</p>
                <a class="lobby__play" href="/slot">"Play the slot"</a>
            </header>
            <TierFilter filter set_filter />
            <Suspense fallback=|| view! { <p class="notice">"Loading jackpots…"</p> }>
                {move || Suspend::new(async move {
                    match jackpots.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="notice">"No jackpots are running right now."</p> }
                                .into_any()
                        }
                        Ok(list) => view! { <JackpotCards list filter /> }.into_any(),
                        Err(reason) => {
                            view! {
                                <p class="notice notice--error" role="alert">
                                    "The jackpots could not be loaded: " {reason}
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn TierFilter(filter: ReadSignal<Option<Tier>>, set_filter: WriteSignal<Option<Tier>>) -> impl IntoView {
    let choices = std::iter::once(None).chain(Tier::ALL.into_iter().map(Some));
    view! {
        <nav class="tier-filter" aria-label="Filter jackpots by tier">
            {choices
                .map(|choice| {
                    let label = choice.map_or("All", tier_label);
                    view! {
                        <button
                            type="button"
                            class="tier-filter__chip"
                            data-tier=choice.map_or("all", Tier::as_str)
                            aria-pressed=move || (filter.get() == choice).to_string()
                            on:click=move |_| set_filter.set(choice)
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view()}
        </nav>
    }
}

#[component]
fn JackpotCards(list: Vec<JackpotSummary>, filter: ReadSignal<Option<Tier>>) -> impl IntoView {
    view! {
        <ul class="jackpots">
            {list
                .into_iter()
                .map(|jackpot| {
                    let tier = jackpot.tier;
                    let hidden = move || filter.get().is_some_and(|chosen| chosen != tier);
                    view! {
                        <li class="jackpot" data-tier=tier.as_str() hidden=hidden>
                            <JackpotCard jackpot />
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

#[component]
fn JackpotCard(jackpot: JackpotSummary) -> impl IntoView {
    let percent = jackpot.progress_bp.percent_label();
    view! {
        <article class="jackpot__card">
            <div class="jackpot__heading">
                <h2 class="jackpot__name">{jackpot.name.clone()}</h2>
                <span class=format!("jackpot__tier jackpot__tier--{}", jackpot.tier)>
                    {tier_label(jackpot.tier)}
                </span>
            </div>
            <p class="jackpot__value">
                <span class="jackpot__currency">{jackpot.currency.to_string()}</span>
                " "
                <span class="jackpot__amount">{jackpot.value.display_grouped(2)}</span>
            </p>
            <div
                class="progress"
                role="progressbar"
                aria-label=format!("{} progress towards its maximum", jackpot.name)
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=percent.clone()
            >
                <div class="progress__fill" style=format!("width: {percent}%")></div>
            </div>
            <p class="jackpot__meta">
                {format!("{percent} % of {} {}", jackpot.currency, jackpot.max_value.display_grouped(2))}
            </p>
        </article>
    }
}

fn tier_label(tier: Tier) -> &'static str {
    match tier {
        Tier::Local => "Local",
        Tier::Shared => "Shared",
        Tier::Mega => "Mega",
    }
}
