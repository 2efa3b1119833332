//! Jackpots: the words of the configuration and how far a pool has grown.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::money::{Amount, Rate};

/// The largest single bet any jackpot takes, 1,000,000.00: with
/// [`BATCH_BETS_MAX`] it bounds what one batch adds to a cycle's meters.
pub const BET_MAX: Amount = Amount::from_micros(1_000_000 * crate::money::MICROS_PER_UNIT);

/// The most bets one batch may write. A batch counts its bets in 64 bits
/// before adding them to the cycles' 128-bit meters ([`crate::money::Total`]),
/// and this many of the largest bet still fit.
pub const BATCH_BETS_MAX: usize = 100_000;
const _: () = assert!((BATCH_BETS_MAX as i64).checked_mul(BET_MAX.micros()).is_some());

/// `as_str` and `FromStr` (failing with [`UnknownWord`]) for an enum whose
/// variants are stored and sent as the given words.
macro_rules! words {
    ($name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(UnknownWord(other.to_owned())),
                }
            }
        }
    };
}

/// Which games feed a jackpot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// One game.
    Local,
    /// A set of games.
    Shared,
    /// All games.
    Mega,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Local, Tier::Shared, Tier::Mega];

    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Local => "local",
            Tier::Shared => "shared",
            Tier::Mega => "mega",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}; expected local, shared or mega")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL.into_iter().find(|tier| tier.as_str() == s).ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// How far a pool has grown towards its maximum, in basis points (0 ..= 10 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Progress(u16);

impl Progress {
    pub const FULL: Progress = Progress(10_000);

    /// `value / maximum`, rounded down to a basis point and clamped to 0 ..= 100 %.
    /// A maximum that is zero or negative (no cap configured) reads as 0 %.
    pub fn of(value: Amount, maximum: Amount) -> Progress {
        if maximum.micros() <= 0 || value.micros() <= 0 {
            return Progress(0);
        }
        let basis_points = i128::from(value.micros()) * 10_000 / i128::from(maximum.micros());
        Progress(basis_points.min(10_000) as u16)
    }

    pub const fn basis_points(self) -> u16 {
        self.0
    }

    /// `"87.5"`-style percentage with one decimal, for labels and CSS widths.
    pub fn percent_label(self) -> String {
        format!("{}.{}", self.0 / 100, (self.0 % 100) / 10)
    }
}

/// Who decides when the pool is won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    /// The server: a secret drop point drawn at cycle start.
    MustDrop,
    /// A game provider, through `POST /jackpot/{id}/award`.
    Provider,
}

words!(TriggerMode { MustDrop => "must_drop", Provider => "provider" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Paused,
}

words!(Status { Active => "active", Paused => "paused" });

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownWord(pub String);

/// The parameters that decide what a bet contributes and when the pool is won.
/// They are frozen for the length of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    contribution_rate: Rate,
    reserve_share: Rate,
    seed: Amount,
    max_value: Amount,
    min_bet: Amount,
    trigger_mode: TriggerMode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("the contribution rate must be above zero")]
    ZeroContributionRate,
    #[error("the seed must not be negative")]
    NegativeSeed,
    #[error("the seed must be below the maximum")]
    SeedNotBelowMaximum,
    #[error("the minimum bet must not be negative")]
    NegativeMinimumBet,
}

impl Rules {
    pub fn new(
        contribution_rate: Rate,
        reserve_share: Rate,
        seed: Amount,
        max_value: Amount,
        min_bet: Amount,
        trigger_mode: TriggerMode,
    ) -> Result<Rules, RulesError> {
        if contribution_rate.ppm() == 0 {
            return Err(RulesError::ZeroContributionRate);
        }
        if seed.is_negative() {
            return Err(RulesError::NegativeSeed);
        }
        if seed >= max_value {
            return Err(RulesError::SeedNotBelowMaximum);
        }
        if min_bet.is_negative() {
            return Err(RulesError::NegativeMinimumBet);
        }
        Ok(Rules { contribution_rate, reserve_share, seed, max_value, min_bet, trigger_mode })
    }

    pub fn contribution_rate(&self) -> Rate {
        self.contribution_rate
    }
    pub fn reserve_share(&self) -> Rate {
        self.reserve_share
    }
    pub fn seed(&self) -> Amount {
        self.seed
    }
    pub fn max_value(&self) -> Amount {
        self.max_value
    }
    pub fn min_bet(&self) -> Amount {
        self.min_bet
    }
    pub fn trigger_mode(&self) -> TriggerMode {
        self.trigger_mode
    }

    /// What a bet contributes. Rounding (see [`Rate::share_of`]): the
    /// contribution is the bet times the rate rounded down to the micro-unit
    /// (the rest of the bet stays with the operator); the reserve share is the
    /// contribution times the reserve share rounded down; the pool share is the
    /// remainder, so any rounding remainder stays in the pool.
    pub fn split(&self, bet: Amount) -> Result<Split, ContributionRejected> {
        if bet.micros() <= 0 {
            return Err(ContributionRejected::NonPositiveBet);
        }
        if bet < self.min_bet {
            return Err(ContributionRejected::BelowMinimumBet);
        }
        let contribution = self.contribution_rate.share_of(bet);
        let reserve_share = self.reserve_share.share_of(contribution);
        let pool_share = Amount::from_micros(contribution.micros() - reserve_share.micros());
        Ok(Split { contribution, pool_share, reserve_share })
    }
}

/// A contribution divided between the pool and the reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub contribution: Amount,
    pub pool_share: Amount,
    pub reserve_share: Amount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContributionRejected {
    #[error("the bet must be above zero")]
    NonPositiveBet,
    #[error("the bet is below this jackpot's minimum eligible bet")]
    BelowMinimumBet,
}

/// The running cycle as a contribution sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub value: Amount,
    /// `Some` for must-drop jackpots: the secret value the pool is won past.
    pub drop_point: Option<Amount>,
}

/// What one contribution did to a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub split: Split,
    /// The part of the pool share the pool took.
    pub to_pool: Amount,
    /// The part of the pool share past the maximum; it goes to the reserve, so
    /// a pool never exceeds its maximum and nothing is lost.
    pub overflow_to_reserve: Amount,
    pub value_before: Amount,
    pub value_after: Amount,
    /// This contribution carried a must-drop pool past its drop point.
    pub drops: bool,
}

impl Applied {
    /// Everything that went to the reserve.
    pub fn to_reserve(&self) -> Amount {
        Amount::from_micros(self.split.reserve_share.micros() + self.overflow_to_reserve.micros())
    }
}

impl Pool {
    /// Applies one bet's contribution. The pool grows by its pool share up to
    /// the maximum; a must-drop pool drops on the contribution that carries its
    /// value strictly past the drop point — with the drop point in
    /// `[seed, max)` that happens at the latest when the value reaches the
    /// maximum, and each contribution's chance is proportional to its share.
    pub fn contribute(&mut self, rules: &Rules, bet: Amount) -> Result<Applied, ContributionRejected> {
        let split = rules.split(bet)?;
        let room = (rules.max_value.micros() - self.value.micros()).max(0);
        let to_pool = split.pool_share.micros().min(room);
        let value_before = self.value;
        self.value = Amount::from_micros(value_before.micros() + to_pool);
        let drops = self.drop_point.is_some_and(|point| value_before <= point && self.value > point);
        Ok(Applied {
            split,
            to_pool: Amount::from_micros(to_pool),
            overflow_to_reserve: Amount::from_micros(split.pool_share.micros() - to_pool),
            value_before,
            value_after: self.value,
            drops,
        })
    }
}

/// Where the next cycle's seed comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedFunding {
    pub from_reserve: Amount,
    /// The shortfall, paid by the house when the reserve cannot cover the seed.
    pub from_house: Amount,
}

/// Funds a seed from the reserve first and the house for the rest.
pub fn fund_seed(seed: Amount, reserve: Amount) -> SeedFunding {
    let from_reserve = seed.micros().min(reserve.micros().max(0));
    SeedFunding {
        from_reserve: Amount::from_micros(from_reserve),
        from_house: Amount::from_micros(seed.micros() - from_reserve),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tiers_round_trip_through_their_names() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
        }
        assert_eq!("Mega".parse::<Tier>(), Err(UnknownTier("Mega".into())));
    }

    #[test]
    fn progress_is_value_over_maximum_rounded_down() {
        let table = [
            (0, 100, 0),
            (50, 100, 5_000),
            (875, 1_000, 8_750),
            (1, 3, 3_333),
            (100, 100, 10_000),
            (150, 100, 10_000),
            (-5, 100, 0),
            (5, 0, 0),
        ];
        for (value, maximum, expected) in table {
            let progress = Progress::of(Amount::from_micros(value), Amount::from_micros(maximum));
            assert_eq!(progress.basis_points(), expected, "{value}/{maximum}");
        }
        assert_eq!(Progress(8_750).percent_label(), "87.5");
        assert_eq!(Progress(5).percent_label(), "0.0");
        assert_eq!(Progress::FULL.percent_label(), "100.0");
    }

    fn rules(rate_ppm: u32, reserve_ppm: u32, seed: i64, max: i64, min_bet: i64) -> Rules {
        Rules::new(
            Rate::from_ppm(rate_ppm).unwrap(),
            Rate::from_ppm(reserve_ppm).unwrap(),
            Amount::from_micros(seed),
            Amount::from_micros(max),
            Amount::from_micros(min_bet),
            TriggerMode::MustDrop,
        )
        .unwrap()
    }

    #[test]
    fn half_a_percent_of_two_fifty_is_split_between_pool_and_reserve() {
        let rules = rules(5_000, 100_000, 0, 1_000_000_000, 0);
        let split = rules.split(Amount::from_micros(2_500_000)).unwrap();
        assert_eq!(split.contribution, Amount::from_micros(12_500));
        assert_eq!(split.reserve_share, Amount::from_micros(1_250));
        assert_eq!(split.pool_share, Amount::from_micros(11_250));
    }

    #[test]
    fn rounding_remainders_stay_in_the_pool() {
        // contribution 3 micros; 10 % reserve of 3 is 0.3 → 0; the pool keeps all 3.
        let rules = rules(300_000, 100_000, 0, 1_000, 0);
        let split = rules.split(Amount::from_micros(10)).unwrap();
        assert_eq!(
            (split.contribution.micros(), split.pool_share.micros(), split.reserve_share.micros()),
            (3, 3, 0)
        );
    }

    #[test]
    fn bets_that_are_not_eligible_are_refused() {
        let rules = rules(5_000, 0, 0, 1_000, 100);
        assert_eq!(rules.split(Amount::ZERO), Err(ContributionRejected::NonPositiveBet));
        assert_eq!(rules.split(Amount::from_micros(-1)), Err(ContributionRejected::NonPositiveBet));
        assert_eq!(rules.split(Amount::from_micros(99)), Err(ContributionRejected::BelowMinimumBet));
        assert!(rules.split(Amount::from_micros(100)).is_ok());
    }

    #[test]
    fn invalid_rules_are_refused() {
        let r = |ppm| Rate::from_ppm(ppm).unwrap();
        let a = Amount::from_micros;
        let mode = TriggerMode::Provider;
        assert_eq!(Rules::new(r(0), r(0), a(0), a(10), a(0), mode), Err(RulesError::ZeroContributionRate));
        assert_eq!(Rules::new(r(1), r(0), a(-1), a(10), a(0), mode), Err(RulesError::NegativeSeed));
        assert_eq!(Rules::new(r(1), r(0), a(10), a(10), a(0), mode), Err(RulesError::SeedNotBelowMaximum));
        assert_eq!(Rules::new(r(1), r(0), a(0), a(10), a(-1), mode), Err(RulesError::NegativeMinimumBet));
    }

    #[test]
    fn the_contribution_that_carries_the_pool_past_the_drop_point_wins() {
        let rules = rules(1_000_000, 0, 100, 1_000, 0);
        let mut pool = Pool { value: Amount::from_micros(100), drop_point: Some(Amount::from_micros(150)) };
        let first = pool.contribute(&rules, Amount::from_micros(50)).unwrap();
        assert_eq!(
            (first.value_after.micros(), first.drops),
            (150, false),
            "reaching the point is not passing it"
        );
        let second = pool.contribute(&rules, Amount::from_micros(1)).unwrap();
        assert_eq!((second.value_after.micros(), second.drops), (151, true));
    }

    #[test]
    fn a_pool_stops_at_its_maximum_and_the_overflow_goes_to_the_reserve() {
        let rules = rules(1_000_000, 0, 0, 1_000, 0);
        let mut pool = Pool { value: Amount::from_micros(990), drop_point: Some(Amount::from_micros(999)) };
        let applied = pool.contribute(&rules, Amount::from_micros(25)).unwrap();
        assert_eq!(applied.value_after.micros(), 1_000);
        assert_eq!(applied.to_pool.micros(), 10);
        assert_eq!(applied.overflow_to_reserve.micros(), 15);
        assert!(applied.drops);
    }

    #[test]
    fn a_seed_is_funded_from_the_reserve_then_the_house() {
        let a = Amount::from_micros;
        assert_eq!(fund_seed(a(100), a(250)), SeedFunding { from_reserve: a(100), from_house: a(0) });
        assert_eq!(fund_seed(a(100), a(30)), SeedFunding { from_reserve: a(30), from_house: a(70) });
        assert_eq!(fund_seed(a(100), a(0)), SeedFunding { from_reserve: a(0), from_house: a(100) });
    }

    proptest! {
        #[test]
        fn money_is_conserved_and_a_pool_never_exceeds_its_maximum(
            rate_ppm in 1..=Rate::PPM_MAX,
            reserve_ppm in 0..=Rate::PPM_MAX,
            seed in 0..1_000_000_000i64,
            span in 1..1_000_000_000i64,
            drop_offset in 0..1_000_000_000i64,
            bets in proptest::collection::vec(1..10_000_000_000i64, 1..50),
        ) {
            let rules = rules(rate_ppm, reserve_ppm, seed, seed + span, 0);
            let drop_point = Amount::from_micros(seed + drop_offset % span);
            let mut pool = Pool { value: rules.seed(), drop_point: Some(drop_point) };
            let mut drops = 0;
            for bet in bets {
                let before = pool.value;
                let applied = pool.contribute(&rules, Amount::from_micros(bet)).unwrap();
                let split = applied.split;
                prop_assert_eq!(split.contribution.micros(), split.pool_share.micros() + split.reserve_share.micros());
                prop_assert_eq!(split.pool_share.micros(), applied.to_pool.micros() + applied.overflow_to_reserve.micros());
                prop_assert!(split.contribution.micros() <= bet);
                prop_assert!(split.pool_share.micros() >= 0 && split.reserve_share.micros() >= 0);
                prop_assert_eq!(pool.value.micros(), before.micros() + applied.to_pool.micros());
                prop_assert!(pool.value >= before, "a pool never decreases through a contribution");
                prop_assert!(pool.value <= rules.max_value());
                if applied.drops {
                    drops += 1;
                    prop_assert!(before <= drop_point && pool.value > drop_point);
                }
            }
            prop_assert!(drops <= 1, "a drop point is passed at most once");
        }

        #[test]
        fn a_must_drop_pool_always_drops_before_passing_its_maximum(
            seed in 0..1_000_000i64, span in 1..1_000_000i64, offset in 0..1_000_000i64, bet in 1..100_000i64,
        ) {
            let rules = rules(1_000_000, 0, seed, seed + span, 0);
            let mut pool = Pool { value: rules.seed(), drop_point: Some(Amount::from_micros(seed + offset % span)) };
            let mut dropped = false;
            for _ in 0..=span / bet + 1 {
                if pool.contribute(&rules, Amount::from_micros(bet)).unwrap().drops {
                    dropped = true;
                    break;
                }
            }
            prop_assert!(dropped);
        }

        #[test]
        fn seed_funding_adds_up(seed in 0..i64::MAX / 2, reserve in -1_000i64..i64::MAX / 2) {
            let funding = fund_seed(Amount::from_micros(seed), Amount::from_micros(reserve));
            prop_assert_eq!(funding.from_reserve.micros() + funding.from_house.micros(), seed);
            prop_assert!(funding.from_reserve.micros() <= reserve.max(0));
            prop_assert!(funding.from_house.micros() >= 0);
        }
    }

    proptest! {
        #[test]
        fn progress_stays_within_bounds_and_grows_with_value(
            a in any::<i64>(), b in any::<i64>(), maximum in 1..i64::MAX,
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let p_low = Progress::of(Amount::from_micros(low), Amount::from_micros(maximum));
            let p_high = Progress::of(Amount::from_micros(high), Amount::from_micros(maximum));
            prop_assert!(p_high.basis_points() <= 10_000);
            prop_assert!(p_low <= p_high);
        }
    }
}

#[cfg(test)]
mod word_tests {
    use super::*;

    #[test]
    fn stored_words_round_trip_and_match_the_json_names() {
        for mode in [TriggerMode::MustDrop, TriggerMode::Provider] {
            assert_eq!(mode.as_str().parse::<TriggerMode>(), Ok(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        for status in [Status::Active, Status::Paused] {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!("closed".parse::<Status>(), Err(UnknownWord("closed".into())));
        assert_eq!("Must_Drop".parse::<TriggerMode>(), Err(UnknownWord("Must_Drop".into())));
    }
}
