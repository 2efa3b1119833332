//! The Mini App's slot as this server runs it: the definition (built in, or
//! the file `slot.definition` names) and the bet rules of `[slot]`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::money::{Amount, Currency};
use domain::play::BetRules;
use domain::slot::{Slot, SlotDefinition};
use figment::providers::{Format, Toml};
use figment::Figment;

use crate::config::SlotSettings;

/// The shipped definition, `server/config/slot.toml`.
pub const BUILT_IN: &str = include_str!("../config/slot.toml");

/// The slot and its bet rules, checked to hold together.
#[derive(Debug, Clone)]
pub struct Game {
    pub slot: Arc<Slot>,
    pub currency: Currency,
    pub bets: BetRules,
    pub spin_interval: Duration,
}

/// Reads a definition: the file at `path`, or the built-in one.
pub fn definition(path: Option<&Path>) -> anyhow::Result<Slot> {
    let figment = match path {
        Some(path) => {
            anyhow::ensure!(path.is_file(), "the slot definition {} does not exist", path.display());
            Figment::from(Toml::file(path))
        }
        None => Figment::from(Toml::string(BUILT_IN)),
    };
    let definition: SlotDefinition = figment.extract().context("reading the slot definition")?;
    Slot::try_from(definition).context("checking the slot definition")
}

impl Game {
    /// The slot `settings` describe, played in `currency` (the money's, as
    /// `Settings::money_currency` checked it).
    pub fn load(settings: &SlotSettings, currency: Currency) -> anyhow::Result<Game> {
        let slot = definition(settings.definition.as_deref())?;
        let lines = slot.lines() as i64;
        anyhow::ensure!(
            settings.bet_step_micros > 0 && settings.bet_step_micros % lines == 0,
            "slot.bet_step_micros must be a positive multiple of the {lines} paylines"
        );
        anyhow::ensure!(
            settings.min_bet_micros > 0
                && settings.min_bet_micros <= settings.max_bet_micros
                && settings.min_bet_micros % settings.bet_step_micros == 0
                && settings.max_bet_micros % settings.bet_step_micros == 0,
            "slot.min_bet_micros and max_bet_micros must be positive multiples of bet_step_micros, min ≤ max"
        );
        anyhow::ensure!(
            settings.max_bet_micros <= domain::jackpot::BET_MAX.micros(),
            "slot.max_bet_micros is above {}, the largest bet a jackpot takes",
            domain::jackpot::BET_MAX
        );
        // The largest win must fit the ledger's 64-bit amounts.
        let top_multiplier: i64 =
            slot.symbols.iter().map(|s| i64::from(s.pays[2])).max().unwrap_or(0) * lines;
        anyhow::ensure!(
            settings.max_bet_micros.checked_mul(top_multiplier).is_some(),
            "slot.max_bet_micros is too large: its biggest win overflows"
        );
        Ok(Game {
            slot: Arc::new(slot),
            currency,
            bets: BetRules {
                min: Amount::from_micros(settings.min_bet_micros),
                max: Amount::from_micros(settings.max_bet_micros),
                step: Amount::from_micros(settings.bet_step_micros),
            },
            spin_interval: Duration::from_millis(settings.spin_interval_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::slot::percent;

    use super::*;
    use crate::demo;

    /// The shipped slot's exact return, pinned: a change to the reels or the
    /// paytable must change this test too, on purpose.
    #[test]
    fn the_shipped_slot_returns_its_declared_target() {
        let slot = definition(None).unwrap();
        let rtp = slot.enumerate();
        assert_eq!(rtp.combinations, 30u64.pow(5));
        assert_eq!(rtp.line_bets_won, slot.line_bets_won_by_counts(), "two computations agree exactly");
        assert_eq!(percent(rtp.base_ppb()), "95.5000 %");
        assert_eq!(rtp.line_bets_won, 232_065_000, "exactly 95.5 % of 24,300,000 × 10 line bets");
        assert_eq!(percent(rtp.hit_frequency_ppb()), "23.2296 %");
        let contributions_ppm = demo::contribution_ppm_of(&slot.game_id);
        assert_eq!(contributions_ppm, 5_000, "0.2 % + 0.15 % + 0.15 %");
        let total_ppm = rtp.base_ppb() / 1_000 + contributions_ppm;
        let target = u64::from(slot.target_rtp_ppm);
        let tolerance = u64::from(slot.target_tolerance_ppm);
        assert!(
            total_ppm.abs_diff(target) <= tolerance,
            "total {total_ppm} ppm is not within {tolerance} of {target}"
        );
    }

    fn chips() -> Currency {
        "CHIPS".parse().unwrap()
    }

    fn settings() -> SlotSettings {
        SlotSettings {
            definition: None,
            min_bet_micros: 100_000,
            max_bet_micros: 50_000_000,
            bet_step_micros: 10_000,
            spin_interval_ms: 2_500,
        }
    }

    #[test]
    fn bet_rules_that_cannot_pay_exactly_are_refused() {
        assert!(Game::load(&settings(), chips()).is_ok());
        let step = SlotSettings { bet_step_micros: 10_005, ..settings() };
        assert!(Game::load(&step, chips()).unwrap_err().to_string().contains("multiple of the 10 paylines"));
        let range = SlotSettings { min_bet_micros: 60_000_000, ..settings() };
        assert!(Game::load(&range, chips()).is_err());
        let missing = SlotSettings { definition: Some("/nonexistent/slot.toml".into()), ..settings() };
        assert!(Game::load(&missing, chips()).unwrap_err().to_string().contains("does not exist"));
    }
}
