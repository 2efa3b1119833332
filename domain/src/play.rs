//! The rules of play for a Mini App player: what a bet may be, the limits a
//! player sets on themselves and when a change of them applies, their totals
//! of the day, the least time between two spins, the pace that looks
//! machine-like, and — from all of these — the decision on one spin.
//!
//! Every function here is pure: the caller brings the clock (the database's)
//! and the stored state, and writes back what these answer.

use chrono::{DateTime, Duration, Utc};

use crate::money::Amount;

/// The longest self-exclusion a player can ask for at once, in days.
pub const SELF_EXCLUDE_DAYS_MAX: i64 = 3650;

// ---- Bets -------------------------------------------------------------------

/// What a bet on the slot must be: within `min..=max`, a whole multiple of `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BetRules {
    pub min: Amount,
    pub max: Amount,
    pub step: Amount,
}

/// Why a bet is not a bet this slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BetRefused {
    #[error("the bet must be positive")]
    NotPositive,
    #[error("the smallest bet is {min}")]
    BelowMinimum { min: Amount },
    #[error("the largest bet is {max}")]
    TooLarge { max: Amount },
    #[error("a bet is a whole multiple of {step}")]
    OffStep { step: Amount },
}

impl BetRules {
    /// Checks in the order a player would want them explained.
    pub fn check(&self, bet: Amount) -> Result<(), BetRefused> {
        if bet.micros() <= 0 {
            Err(BetRefused::NotPositive)
        } else if bet < self.min {
            Err(BetRefused::BelowMinimum { min: self.min })
        } else if bet > self.max {
            Err(BetRefused::TooLarge { max: self.max })
        } else if self.step.micros() > 0 && bet.micros() % self.step.micros() != 0 {
            Err(BetRefused::OffStep { step: self.step })
        } else {
            Ok(())
        }
    }
}

// ---- The day's totals -------------------------------------------------------

/// One player's totals for one UTC day, in micro-units: what the daily limits
/// are checked against without summing the day's spins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Day {
    pub spins: i64,
    pub bets_micros: i64,
    /// Line wins and jackpot awards.
    pub wins_micros: i64,
    pub deposits_micros: i64,
}

impl Day {
    /// What the player lost that day: bets less wins, never below zero.
    pub fn lost_micros(&self) -> i64 {
        (self.bets_micros - self.wins_micros).max(0)
    }

    /// One spin's share of a day.
    pub fn of_spin(bet: Amount, win: Amount) -> Day {
        Day { spins: 1, bets_micros: bet.micros(), wins_micros: win.micros(), deposits_micros: 0 }
    }

    /// A jackpot win's share of a day: a win, not a spin.
    pub fn of_jackpot_win(amount: Amount) -> Day {
        Day { wins_micros: amount.micros(), ..Day::default() }
    }

    pub fn of_deposit(amount: Amount) -> Day {
        Day { deposits_micros: amount.micros(), ..Day::default() }
    }

    pub fn add(&mut self, more: &Day) {
        self.spins += more.spins;
        self.bets_micros += more.bets_micros;
        self.wins_micros += more.wins_micros;
        self.deposits_micros += more.deposits_micros;
    }
}

// ---- Limits -----------------------------------------------------------------

/// Daily limits, in micro-units; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub daily_loss_micros: Option<i64>,
    pub daily_deposit_micros: Option<i64>,
}

impl Limits {
    fn get(&self, which: Limit) -> Option<i64> {
        match which {
            Limit::DailyLoss => self.daily_loss_micros,
            Limit::DailyDeposit => self.daily_deposit_micros,
        }
    }

    fn set(&mut self, which: Limit, value: Option<i64>) {
        match which {
            Limit::DailyLoss => self.daily_loss_micros = value,
            Limit::DailyDeposit => self.daily_deposit_micros = value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    DailyLoss,
    DailyDeposit,
}

/// Raised or removed limits that apply from `from`: the cooling-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub limits: Limits,
    pub from: DateTime<Utc>,
}

/// A player's limits as stored: those in force, those waiting for their
/// cooling-off, and self-exclusion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSchedule {
    pub current: Limits,
    pub pending: Option<Pending>,
    pub self_excluded_until: Option<DateTime<Utc>>,
}

/// A player's change of their limits. `None` leaves a limit as it is;
/// `Some(None)` removes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitChange {
    pub daily_loss: Option<Option<Amount>>,
    pub daily_deposit: Option<Option<Amount>>,
    /// Exclude oneself for this many days from now; it never shortens an
    /// exclusion already running.
    pub self_exclude_days: Option<i64>,
}

/// Why a change of limits is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitChangeRefused {
    #[error("a limit is a positive amount (send null to remove it)")]
    NotPositive,
    #[error("selfExcludeDays is 1 to {SELF_EXCLUDE_DAYS_MAX}")]
    ExclusionOutOfRange,
}

impl LimitChange {
    pub fn check(&self) -> Result<(), LimitChangeRefused> {
        for change in [self.daily_loss, self.daily_deposit] {
            if let Some(Some(amount)) = change {
                if amount.micros() <= 0 {
                    return Err(LimitChangeRefused::NotPositive);
                }
            }
        }
        match self.self_exclude_days {
            Some(days) if !(1..=SELF_EXCLUDE_DAYS_MAX).contains(&days) => {
                Err(LimitChangeRefused::ExclusionOutOfRange)
            }
            _ => Ok(()),
        }
    }
}

impl LimitSchedule {
    /// The limits in force at `now`: the pending ones once their cooling-off is over.
    pub fn in_force(&self, now: DateTime<Utc>) -> Limits {
        match self.pending {
            Some(pending) if pending.from <= now => pending.limits,
            _ => self.current,
        }
    }

    /// The schedule with pending limits whose cooling-off is over at `now`
    /// made the current ones; `None` when nothing changes.
    pub fn settled(&self, now: DateTime<Utc>) -> Option<LimitSchedule> {
        let pending = self.pending.filter(|p| p.from <= now)?;
        Some(LimitSchedule { current: pending.limits, pending: None, ..*self })
    }

    /// The end of a self-exclusion still running at `now`.
    pub fn excluded_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.self_excluded_until.filter(|until| *until > now)
    }

    /// The schedule after `change` at `now`, on a schedule already
    /// [`settled`](Self::settled). A tighter limit (a lower one, or one where
    /// there was none) applies at once; a looser one, or a removal, waits
    /// `cooling_off` — and restarts the wait of any change still pending. A
    /// pending value looser than a new tighter one is tightened with it, so
    /// it cannot undo it later. Self-exclusion only ever lengthens.
    pub fn changed(&self, change: &LimitChange, now: DateTime<Utc>, cooling_off: Duration) -> LimitSchedule {
        let mut current = self.current;
        let mut pending = self.pending;
        let wanted = [(Limit::DailyLoss, change.daily_loss), (Limit::DailyDeposit, change.daily_deposit)];
        for (which, change) in wanted {
            let Some(wanted) = change.map(|limit| limit.map(Amount::micros)) else { continue };
            let tighter = match (current.get(which), wanted) {
                (None, Some(_)) => true,
                (Some(now), Some(wanted)) => wanted <= now,
                (now, None) => now.is_none(),
            };
            if tighter {
                current.set(which, wanted);
                if let Some(pending) = pending.as_mut() {
                    let looser = pending.limits.get(which).is_none_or(|p| wanted.is_some_and(|w| p > w));
                    if looser {
                        pending.limits.set(which, wanted);
                    }
                }
            } else {
                let pending = pending.get_or_insert(Pending { limits: current, from: now });
                pending.limits.set(which, wanted);
                pending.from = now + cooling_off;
            }
        }
        if pending.is_some_and(|p| p.limits == current) {
            pending = None;
        }
        let self_excluded_until = match change.self_exclude_days {
            Some(days) => {
                let wanted = now + Duration::days(days);
                Some(self.self_excluded_until.filter(|until| *until > wanted).unwrap_or(wanted))
            }
            None => self.self_excluded_until,
        };
        LimitSchedule { current, pending, self_excluded_until }
    }
}

/// Why a deposit is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DepositRefused {
    #[error("the amount must be positive")]
    NotPositive,
    #[error("the largest deposit is {max}")]
    TooLarge { max: Amount },
    #[error("you have excluded yourself until {until}")]
    SelfExcluded { until: DateTime<Utc> },
    #[error("this deposit would pass your daily deposit limit of {limit}")]
    LimitReached { limit: Amount, deposited: Amount },
}

/// Whether `amount` is a deposit at all: positive and at most `max`, the
/// largest single deposit.
pub fn check_deposit_amount(amount: Amount, max: Amount) -> Result<(), DepositRefused> {
    if amount.micros() <= 0 {
        Err(DepositRefused::NotPositive)
    } else if amount > max {
        Err(DepositRefused::TooLarge { max })
    } else {
        Ok(())
    }
}

/// Whether a player may deposit `amount` at `now`, having deposited `day`'s
/// deposits already; `max` is the largest single deposit.
pub fn check_deposit(
    limits: &LimitSchedule,
    day: &Day,
    amount: Amount,
    max: Amount,
    now: DateTime<Utc>,
) -> Result<(), DepositRefused> {
    check_deposit_amount(amount, max)?;
    if let Some(until) = limits.excluded_until(now) {
        return Err(DepositRefused::SelfExcluded { until });
    }
    if let Some(limit) = limits.in_force(now).daily_deposit_micros {
        if day.deposits_micros.saturating_add(amount.micros()) > limit {
            return Err(DepositRefused::LimitReached {
                limit: Amount::from_micros(limit),
                deposited: Amount::from_micros(day.deposits_micros),
            });
        }
    }
    Ok(())
}

// ---- Pace -------------------------------------------------------------------

/// The pace of a player's spins: when they last spun, the interval before
/// that spin, and how many spins in a row came at an interval within the
/// tolerance of the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    pub last_spin_at: Option<DateTime<Utc>>,
    pub last_interval_ms: Option<i64>,
    pub steady_spins: i32,
}

/// When a steady pace looks machine-like: this many spins in a row whose
/// interval is within `tolerance_ms` of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Velocity {
    pub steady_spins: i32,
    pub tolerance_ms: i64,
}

/// A pace flagged for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteadyPace {
    pub interval_ms: i64,
    pub steady_spins: i32,
    pub tolerance_ms: i64,
}

impl Pace {
    /// The pace after a spin at `now`, and a flag when it reaches
    /// `velocity`'s count (which then starts counting again).
    pub fn after_spin(&self, now: DateTime<Utc>, velocity: &Velocity) -> (Pace, Option<SteadyPace>) {
        let Some(last) = self.last_spin_at else {
            return (Pace { last_spin_at: Some(now), ..*self }, None);
        };
        // A clock behind the last spin (see [`check_spin`]) is taken as the same moment.
        let now = now.max(last);
        let interval = (now - last).num_milliseconds();
        let steady = self
            .last_interval_ms
            .is_some_and(|previous| (interval - previous).abs() <= velocity.tolerance_ms);
        let mut next = Pace {
            last_spin_at: Some(now),
            last_interval_ms: Some(interval),
            steady_spins: if steady { self.steady_spins + 1 } else { 0 },
        };
        if next.steady_spins < velocity.steady_spins {
            return (next, None);
        }
        next.steady_spins = 0;
        let flag = SteadyPace {
            interval_ms: interval,
            steady_spins: velocity.steady_spins,
            tolerance_ms: velocity.tolerance_ms,
        };
        (next, Some(flag))
    }
}

// ---- One spin ---------------------------------------------------------------

/// The rules a spin is decided by, besides the bet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinRules {
    /// The least time between two spins of one player, in milliseconds.
    pub interval_ms: i64,
    pub velocity: Velocity,
}

/// Why the rules of play refuse a spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlayRefusal {
    #[error("the player has excluded themselves until {until}")]
    SelfExcluded { until: DateTime<Utc> },
    #[error("the last spin was less than the minimum interval ago")]
    TooSoon { retry_after_ms: i64 },
    #[error("the wallet holds {balance}, less than the bet")]
    InsufficientFunds { balance: Amount },
    #[error("this spin could lose more than the daily loss limit of {limit} allows ({lost} lost today)")]
    LossLimitReached { limit: Amount, lost: Amount },
}

/// What a spin moves of a player, as the spins before it in the batch left it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    pub balance_micros: i64,
    pub day: Day,
    pub pace: Pace,
}

/// Whether the player may spin `bet` at `now`, checked in the order a player
/// would want them explained: self-exclusion, the interval, the balance, the
/// loss limit (which counts the whole bet as lost, so a spin can never take
/// the player past it).
pub fn check_spin(
    rules: &SpinRules,
    limits: &LimitSchedule,
    standing: &Standing,
    bet: Amount,
    now: DateTime<Utc>,
) -> Result<(), PlayRefusal> {
    if let Some(until) = limits.excluded_until(now) {
        return Err(PlayRefusal::SelfExcluded { until });
    }
    if let Some(last) = standing.pace.last_spin_at {
        // `now` is the deciding transaction's start; a batch that waited for
        // the player's lock may have started before the batch that spun last
        // committed, so its clock can be a little behind that spin: that is
        // no time at all, never a negative one.
        let since = (now - last).num_milliseconds().max(0);
        if since < rules.interval_ms {
            return Err(PlayRefusal::TooSoon { retry_after_ms: rules.interval_ms - since });
        }
    }
    if standing.balance_micros < bet.micros() {
        return Err(PlayRefusal::InsufficientFunds { balance: Amount::from_micros(standing.balance_micros) });
    }
    if let Some(limit) = limits.in_force(now).daily_loss_micros {
        let lost = standing.day.lost_micros();
        if lost.saturating_add(bet.micros()) > limit {
            return Err(PlayRefusal::LossLimitReached {
                limit: Amount::from_micros(limit),
                lost: Amount::from_micros(lost),
            });
        }
    }
    Ok(())
}

/// The standing after an accepted spin of `bet` that won `win` (line wins;
/// a jackpot win is added when it is paid), and a flag when its pace looks
/// machine-like.
pub fn after_spin(
    rules: &SpinRules,
    standing: &Standing,
    bet: Amount,
    win: Amount,
    now: DateTime<Utc>,
) -> (Standing, Option<SteadyPace>) {
    let (pace, flag) = standing.pace.after_spin(now, &rules.velocity);
    let mut day = standing.day;
    day.add(&Day::of_spin(bet, win));
    let balance_micros = standing.balance_micros + win.micros() - bet.micros();
    (Standing { balance_micros, day, pace }, flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn eur(units: i64) -> Amount {
        Amount::from_units(units).unwrap()
    }

    const fn m(units: i64) -> i64 {
        units * 1_000_000
    }

    const RULES: SpinRules =
        SpinRules { interval_ms: 2_500, velocity: Velocity { steady_spins: 3, tolerance_ms: 50 } };

    const BETS: BetRules = BetRules {
        min: Amount::from_micros(100_000),
        max: Amount::from_micros(50_000_000),
        step: Amount::from_micros(10_000),
    };

    #[test]
    fn bets_are_refused_in_the_order_a_player_reads_them() {
        let cases = [
            ("0", Err(BetRefused::NotPositive)),
            ("-1.00", Err(BetRefused::NotPositive)),
            ("0.09", Err(BetRefused::BelowMinimum { min: BETS.min })),
            ("50.01", Err(BetRefused::TooLarge { max: BETS.max })),
            ("1.005", Err(BetRefused::OffStep { step: BETS.step })),
            ("0.10", Ok(())),
            ("1.23", Ok(())),
            ("50.00", Ok(())),
        ];
        for (bet, expected) in cases {
            assert_eq!(BETS.check(bet.parse().unwrap()), expected, "{bet}");
        }
    }

    #[test]
    fn a_day_counts_losses_never_below_zero() {
        let mut day = Day::default();
        day.add(&Day::of_spin(eur(5), eur(2)));
        assert_eq!(day.lost_micros(), m(3));
        day.add(&Day::of_jackpot_win(eur(100)));
        assert_eq!(day.lost_micros(), 0);
        assert_eq!(day.spins, 1, "a jackpot win is not a spin");
        day.add(&Day::of_deposit(eur(20)));
        assert_eq!(day, Day { spins: 1, bets_micros: m(5), wins_micros: m(102), deposits_micros: m(20) });
    }

    fn loss_limit(units: i64) -> LimitChange {
        LimitChange { daily_loss: Some(Some(eur(units))), ..LimitChange::default() }
    }

    const DAY: i64 = 86_400;

    #[test]
    fn limits_tighten_at_once_and_loosen_after_the_cooling_off() {
        let cool = Duration::seconds(DAY);
        let none = LimitSchedule::default();
        // Setting a limit where there was none is tighter: at once.
        let s = none.changed(&loss_limit(50), at(0), cool);
        assert_eq!(s.current.daily_loss_micros, Some(m(50)));
        assert_eq!(s.pending, None);
        // Lowering: at once.
        let s = s.changed(&loss_limit(20), at(10), cool);
        assert_eq!(s.in_force(at(10)).daily_loss_micros, Some(m(20)));
        // Raising waits a day, then applies.
        let s = s.changed(&loss_limit(80), at(20), cool);
        assert_eq!(s.in_force(at(20)).daily_loss_micros, Some(m(20)));
        assert_eq!(s.pending.unwrap().from, at(20 + DAY));
        assert_eq!(s.in_force(at(20 + DAY)).daily_loss_micros, Some(m(80)));
        assert_eq!(s.settled(at(20 + DAY - 1)), None);
        let settled = s.settled(at(20 + DAY)).unwrap();
        assert_eq!(settled.current.daily_loss_micros, Some(m(80)));
        assert_eq!(settled.pending, None);
        // Removing is looser: it waits too.
        let removed = settled.changed(
            &LimitChange { daily_loss: Some(None), ..LimitChange::default() },
            at(30 + DAY),
            cool,
        );
        assert_eq!(removed.in_force(at(30 + DAY)).daily_loss_micros, Some(m(80)));
        assert_eq!(removed.in_force(at(30 + 2 * DAY)).daily_loss_micros, None);
    }

    #[test]
    fn a_tighter_limit_also_tightens_a_looser_one_waiting() {
        let cool = Duration::seconds(DAY);
        let s = LimitSchedule::default().changed(&loss_limit(50), at(0), cool);
        let s = s.changed(&loss_limit(100), at(1), cool); // waits
        let s = s.changed(&loss_limit(30), at(2), cool); // at once, and the 100 waiting becomes 30
        assert_eq!(s.current.daily_loss_micros, Some(m(30)));
        assert_eq!(s.pending, None, "a pending value equal to the current one is no change");
        assert_eq!(s.in_force(at(2 + DAY)).daily_loss_micros, Some(m(30)));
    }

    #[test]
    fn a_second_looser_change_restarts_the_wait() {
        let cool = Duration::seconds(DAY);
        let s = LimitSchedule::default().changed(&loss_limit(50), at(0), cool);
        let s = s.changed(&loss_limit(60), at(100), cool);
        let s = s.changed(
            &LimitChange { daily_deposit: Some(Some(eur(10))), ..LimitChange::default() },
            at(200),
            cool,
        );
        // The deposit limit was none: tighter, at once; the loss limit's wait stands.
        assert_eq!(s.current.daily_deposit_micros, Some(m(10)));
        assert_eq!(s.pending.unwrap().from, at(100 + DAY));
        assert_eq!(s.pending.unwrap().limits.daily_deposit_micros, Some(m(10)));
        let s = s.changed(&loss_limit(70), at(300), cool);
        assert_eq!(s.pending.unwrap().from, at(300 + DAY));
        assert_eq!(s.pending.unwrap().limits.daily_loss_micros, Some(m(70)));
    }

    #[test]
    fn self_exclusion_only_lengthens() {
        let cool = Duration::seconds(DAY);
        let exclude = |days| LimitChange { self_exclude_days: Some(days), ..LimitChange::default() };
        let s = LimitSchedule::default().changed(&exclude(30), at(0), cool);
        assert_eq!(s.excluded_until(at(0)), Some(at(30 * DAY)));
        let shorter = s.changed(&exclude(1), at(10), cool);
        assert_eq!(shorter.self_excluded_until, Some(at(30 * DAY)));
        let longer = s.changed(&exclude(60), at(10), cool);
        assert_eq!(longer.self_excluded_until, Some(at(10 + 60 * DAY)));
        assert_eq!(longer.excluded_until(at(11 + 60 * DAY)), None, "over once it has passed");
    }

    #[test]
    fn limit_changes_are_checked() {
        assert_eq!(loss_limit(0).check(), Err(LimitChangeRefused::NotPositive));
        for days in [0, -1, SELF_EXCLUDE_DAYS_MAX + 1] {
            let change = LimitChange { self_exclude_days: Some(days), ..LimitChange::default() };
            assert_eq!(change.check(), Err(LimitChangeRefused::ExclusionOutOfRange), "{days}");
        }
        assert_eq!(LimitChange { daily_loss: Some(None), ..LimitChange::default() }.check(), Ok(()));
    }

    fn standing(balance: i64) -> Standing {
        Standing { balance_micros: m(balance), ..Standing::default() }
    }

    #[test]
    fn spins_are_refused_in_the_order_a_player_reads_them() {
        let limits = LimitSchedule {
            current: Limits { daily_loss_micros: Some(m(10)), daily_deposit_micros: None },
            pending: None,
            self_excluded_until: Some(at(100)),
        };
        let mut s = standing(5);
        s.pace.last_spin_at = Some(at(99));
        s.day = Day { bets_micros: m(8), ..Day::default() };
        let check = |s: &Standing, bet, now| check_spin(&RULES, &limits, s, eur(bet), now);
        assert_eq!(check(&s, 1, at(99)), Err(PlayRefusal::SelfExcluded { until: at(100) }));
        let now = at(100) + Duration::milliseconds(500);
        assert_eq!(check(&s, 1, now), Err(PlayRefusal::TooSoon { retry_after_ms: 1_000 }));
        let now = at(102);
        assert_eq!(check(&s, 6, now), Err(PlayRefusal::InsufficientFunds { balance: eur(5) }));
        assert_eq!(check(&s, 3, now), Err(PlayRefusal::LossLimitReached { limit: eur(10), lost: eur(8) }));
        assert_eq!(check(&s, 2, now), Ok(()));
    }

    #[test]
    fn a_clock_behind_the_last_spin_counts_as_no_time_not_negative_time() {
        let mut s = standing(10);
        s.pace.last_spin_at = Some(at(100));
        let behind = at(100) - Duration::milliseconds(2);
        let limits = LimitSchedule::default();
        let no_interval = SpinRules { interval_ms: 0, ..RULES };
        assert_eq!(check_spin(&no_interval, &limits, &s, eur(1), behind), Ok(()));
        assert_eq!(
            check_spin(&RULES, &limits, &s, eur(1), behind),
            Err(PlayRefusal::TooSoon { retry_after_ms: 2_500 })
        );
        let (after, _) = after_spin(&no_interval, &s, eur(1), eur(0), behind);
        assert_eq!(after.pace.last_spin_at, Some(at(100)), "the last spin's time never goes back");
        assert_eq!(after.pace.last_interval_ms, Some(0));
    }

    #[test]
    fn a_steady_pace_is_flagged_once_per_run() {
        let mut pace = Pace::default();
        let mut flags = Vec::new();
        for spin in 0..10 {
            let (next, flag) = pace.after_spin(at(spin * 3), &RULES.velocity);
            pace = next;
            flags.extend(flag.map(|f| (spin, f)));
        }
        // Spin 0 has no interval, spin 1 the first, spins 2, 3, 4 are steady:
        // the third steady one flags and the count starts again.
        let flag = SteadyPace { interval_ms: 3_000, steady_spins: 3, tolerance_ms: 50 };
        assert_eq!(flags, vec![(4, flag), (7, flag)]);
        // An irregular interval resets the count.
        let (next, _) = pace.after_spin(at(40), &RULES.velocity);
        assert_eq!(next.steady_spins, 0);
        assert_eq!(next.last_interval_ms, Some(13_000));
    }

    proptest! {
        #[test]
        fn a_limit_in_force_is_never_looser_than_asked_before_the_cooling_off(
            changes in proptest::collection::vec((0..3u8, proptest::option::of(1..1_000i64), 0..DAY), 1..30),
        ) {
            // Whatever the sequence of changes, until a day has passed since a
            // change, the limit in force is at most the tightest limit asked
            // for since then (loosening always waits).
            let cool = Duration::seconds(DAY);
            let mut schedule = LimitSchedule::default();
            let mut t = 0;
            for (kind, value, gap) in changes {
                t += gap;
                let now = at(t);
                schedule = schedule.settled(now).unwrap_or(schedule);
                let before = schedule.in_force(now).daily_loss_micros;
                let change = match kind {
                    0 => LimitChange { daily_loss: Some(value.map(eur)), ..LimitChange::default() },
                    1 => LimitChange { daily_deposit: Some(value.map(eur)), ..LimitChange::default() },
                    _ => LimitChange { self_exclude_days: Some(1), ..LimitChange::default() },
                };
                let next = schedule.changed(&change, now, cool);
                let after = next.in_force(now).daily_loss_micros;
                // At `now`, a change never loosens the loss limit in force.
                match (before, after) {
                    (Some(b), Some(a)) => prop_assert!(a <= b),
                    (Some(_), None) => prop_assert!(false, "a limit was removed at once"),
                    _ => {}
                }
                // Self-exclusion never shortens.
                if let (Some(b), Some(a)) = (schedule.self_excluded_until, next.self_excluded_until) {
                    prop_assert!(a >= b);
                }
                prop_assert!(schedule.self_excluded_until.is_none() || next.self_excluded_until.is_some());
                schedule = next;
            }
        }

        #[test]
        fn accepted_spins_never_pass_the_loss_limit_or_overdraw(
            balance in 0..1_000i64,
            limit in 1..500i64,
            spins in proptest::collection::vec((1..20i64, 0..40i64), 1..60),
        ) {
            let limits = LimitSchedule {
                current: Limits { daily_loss_micros: Some(m(limit)), daily_deposit_micros: None },
                ..LimitSchedule::default()
            };
            let rules = SpinRules { interval_ms: 0, ..RULES };
            let mut s = standing(balance);
            for (i, (bet, win)) in spins.into_iter().enumerate() {
                let now = at(i as i64);
                if check_spin(&rules, &limits, &s, eur(bet), now).is_ok() {
                    prop_assert!(s.day.lost_micros() + m(bet) <= m(limit));
                    s = after_spin(&rules, &s, eur(bet), eur(win), now).0;
                    prop_assert!(s.balance_micros >= 0);
                    prop_assert!(s.day.lost_micros() <= m(limit));
                }
            }
        }

        #[test]
        fn a_deposit_within_the_limit_is_taken_and_one_past_it_is_not(
            limit in 1..10_000i64, deposited in 0..10_000i64, amount in 1..10_000i64,
        ) {
            let limits = LimitSchedule {
                current: Limits { daily_loss_micros: None, daily_deposit_micros: Some(m(limit)) },
                ..LimitSchedule::default()
            };
            let day = Day { deposits_micros: m(deposited), ..Day::default() };
            let result = check_deposit(&limits, &day, eur(amount), eur(1_000_000), at(0));
            prop_assert_eq!(result.is_ok(), deposited + amount <= limit);
        }
    }
}
