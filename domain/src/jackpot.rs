//! Jackpots: the words of the configuration and how far a pool has grown.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::money::Amount;

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
