//! Money as integers with a fixed scale.
//!
//! An [`Amount`] counts *micro-units*: one millionth of the currency's main unit
//! (`1.00` = 1 000 000). Six decimals hold every contribution we take: 0.5 % of
//! the smallest bet of 0.01 is 0.00005. Amounts never pass through floating point.
//!
//! Rounding: parsing refuses digits beyond the sixth decimal instead of rounding
//! them; operations that must divide (a rate applied to a bet) live next to the
//! rule that needs them and say there how the remainder is kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Micro-units per main currency unit.
pub const MICROS_PER_UNIT: i64 = 1_000_000;
/// Number of decimal places an [`Amount`] carries.
pub const SCALE: u32 = 6;

/// A signed amount of money in micro-units of its currency.
///
/// The currency is not part of the value: accounts and jackpots carry it, and
/// arithmetic between them is checked where they meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("an amount is a decimal number such as \"2.50\"")]
    Malformed,
    #[error("an amount has at most {SCALE} decimal places")]
    TooPrecise,
    #[error("the amount is too large")]
    OutOfRange,
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_micros(micros: i64) -> Self {
        Amount(micros)
    }

    /// Whole main units, e.g. `Amount::from_units(25)` is 25.00.
    pub fn from_units(units: i64) -> Option<Self> {
        units.checked_mul(MICROS_PER_UNIT).map(Amount)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Renders with exactly `decimals` places, truncating toward zero (for display
    /// only — stored values keep all six places).
    pub fn display_with(self, decimals: u32) -> String {
        decimal(i128::from(self.0), decimals)
    }

    /// As [`Amount::display_with`], with the whole units grouped in threes by
    /// commas for reading (`10,000.00`).
    pub fn display_grouped(self, decimals: u32) -> String {
        grouped(&self.display_with(decimals))
    }
}

/// `micros` with exactly `decimals` places, truncated toward zero.
fn decimal(micros: i128, decimals: u32) -> String {
    let decimals = decimals.min(SCALE);
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let per_unit = MICROS_PER_UNIT.unsigned_abs() as u128;
    let (units, frac) = (abs / per_unit, abs % per_unit);
    if decimals == 0 {
        return format!("{sign}{units}");
    }
    let shown = frac / 10u128.pow(SCALE - decimals);
    format!("{sign}{units}.{shown:0width$}", width = decimals as usize)
}

/// A plain decimal with its whole units grouped in threes by commas.
fn grouped(plain: &str) -> String {
    let (sign, unsigned) = plain.strip_prefix('-').map_or(("", plain), |rest| ("-", rest));
    let (int, frac) = unsigned.split_once('.').map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(plain.len() + int.len() / 3);
    for (index, digit) in int.chars().enumerate() {
        if index > 0 && (int.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The canonical form of `micros`: all six decimals with trailing zeros
/// dropped, but at least two (`2.50`, `0.0125`, `1000.00`).
///
/// Written straight into `f`, with no allocation: every amount of every
/// receipt, answer and audit record goes through here. Whole units that fit
/// 64 bits (all of an [`Amount`]'s) are divided and printed as `u64`; only a
/// [`Total`] past them takes the 128-bit path.
fn canonical(micros: i128, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let per_unit = MICROS_PER_UNIT.unsigned_abs();
    // Six decimals, trailing zeros dropped down to two.
    let (mut frac, mut width) = ((abs % u128::from(per_unit)) as u64, SCALE as usize);
    while width > 2 && frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    match u64::try_from(abs) {
        Ok(abs) => write!(f, "{sign}{}.{frac:0width$}", abs / per_unit),
        Err(_) => write!(f, "{sign}{}.{frac:0width$}", abs / u128::from(per_unit)),
    }
}

/// The canonical form: all six decimals with trailing zeros dropped, but at
/// least two (`2.50`, `0.0125`, `1000.00`).
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        canonical(i128::from(self.0), f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Accepts `[-]digits[.digits]` with at most six decimals. No exponent, no
    /// thousands separators, no leading `+`, no whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (body, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Malformed);
        }
        let frac = frac.unwrap_or("");
        if frac.len() > SCALE as usize {
            return Err(AmountError::TooPrecise);
        }
        let units: i64 = int.parse().map_err(|_| AmountError::OutOfRange)?;
        let frac_micros: i64 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<width$}", width = SCALE as usize);
            padded.parse().map_err(|_| AmountError::Malformed)?
        };
        let magnitude = units
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|m| m.checked_add(frac_micros))
            .ok_or(AmountError::OutOfRange)?;
        Ok(Amount(if negative { -magnitude } else { magnitude }))
    }
}

/// JSON carries amounts as decimal strings so no client parses them as floats.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A meter: what many amounts add up to over a jackpot's life (its bets,
/// contributions, wins), in micro-units of its currency. Every single
/// amount fits an [`Amount`]; their sum may not, so a meter is 128 bits wide
/// — about 1.7 × 10³² units, more than any casino takes — and PostgreSQL keeps
/// it as `numeric(38,0)`. It is displayed and serialized as an [`Amount`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Total(i128);

impl Total {
    pub const fn from_micros(micros: i128) -> Self {
        Total(micros)
    }

    pub const fn micros(self) -> i128 {
        self.0
    }
}

impl From<Amount> for Total {
    fn from(amount: Amount) -> Self {
        Total(i128::from(amount.0))
    }
}

/// As [`Amount`]'s canonical form.
impl fmt::Display for Total {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        canonical(self.0, f)
    }
}

impl Serialize for Total {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A fraction in parts per million (0 ..= 1 000 000), e.g. a contribution rate
/// of 0.5 % is `Rate::from_ppm(5_000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rate is between 0 and 1 000 000 parts per million")]
pub struct RateError;

impl Rate {
    pub const PPM_MAX: u32 = 1_000_000;

    pub fn from_ppm(ppm: u32) -> Result<Rate, RateError> {
        if ppm <= Rate::PPM_MAX {
            Ok(Rate(ppm))
        } else {
            Err(RateError)
        }
    }

    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// `amount × rate`, rounded down to the micro-unit. The caller keeps what
    /// is not taken (`amount − share`), so rounding moves money, never loses it.
    /// Negative amounts are not a share of anything and give zero.
    pub fn share_of(self, amount: Amount) -> Amount {
        if amount.0 <= 0 {
            return Amount::ZERO;
        }
        let share = i128::from(amount.0) * i128::from(self.0) / i128::from(Rate::PPM_MAX);
        // share ≤ amount because ppm ≤ 1 000 000, so it fits in i64.
        Amount(share as i64)
    }
}

/// A currency code: upper-case ASCII letters. Real money is named by its
/// ISO 4217 code, three letters (`EUR`); play money by a longer code of up
/// to eight (`CHIPS`), so a play-money currency can never be mistaken for a
/// real one — its [`MoneyMode`] is part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; Currency::MAX_LEN],
    len: u8,
}

/// Whether an amount is an operator's licensed money or play money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyMode {
    /// Play-money chips: never cashable; they feed and win only pools of
    /// their own currency.
    Demo,
    /// Real money, in an ISO 4217 currency.
    Real,
}

impl MoneyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MoneyMode::Demo => "demo",
            MoneyMode::Real => "real",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a currency is three upper-case letters such as \"EUR\" (real money) or four to eight such as \"CHIPS\" (play money)")]
pub struct CurrencyError;

impl Currency {
    /// The longest code (a play-money one).
    pub const MAX_LEN: usize = 8;

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.code[..usize::from(self.len)]).unwrap_or("???")
    }

    /// Three letters are real money (ISO 4217); longer codes play money.
    pub fn money_mode(&self) -> MoneyMode {
        if self.len == 3 {
            MoneyMode::Real
        } else {
            MoneyMode::Demo
        }
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if !(3..=Currency::MAX_LEN).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(CurrencyError);
        }
        let mut code = [0u8; Currency::MAX_LEN];
        code[..bytes.len()].copy_from_slice(bytes);
        Ok(Currency { code, len: bytes.len() as u8 })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_forms_callers_send() {
        let table = [
            ("2.50", 2_500_000),
            ("0.0125", 12_500),
            ("0.000001", 1),
            ("100", 100_000_000),
            ("-3.1", -3_100_000),
            ("0", 0),
            ("007.5", 7_500_000),
        ];
        for (text, micros) in table {
            assert_eq!(text.parse::<Amount>(), Ok(Amount::from_micros(micros)), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        let table = [
            ("", AmountError::Malformed),
            ("abc", AmountError::Malformed),
            ("1.", AmountError::Malformed),
            (".5", AmountError::Malformed),
            ("+1", AmountError::Malformed),
            ("1e3", AmountError::Malformed),
            ("1,000", AmountError::Malformed),
            (" 1", AmountError::Malformed),
            ("--1", AmountError::Malformed),
            ("1.0000001", AmountError::TooPrecise),
            ("9223372036854775807", AmountError::OutOfRange),
            ("9223372036854.775808", AmountError::OutOfRange),
        ];
        for (text, error) in table {
            assert_eq!(text.parse::<Amount>(), Err(error), "{text:?}");
        }
    }

    #[test]
    fn displays_at_least_two_decimals_and_no_trailing_zeros_beyond() {
        let table = [
            (2_500_000, "2.50"),
            (12_500, "0.0125"),
            (1, "0.000001"),
            (1_000_000_000, "1000.00"),
            (-3_100_000, "-3.10"),
            (0, "0.00"),
        ];
        for (micros, text) in table {
            assert_eq!(Amount::from_micros(micros).to_string(), text);
        }
        assert_eq!(Amount::from_micros(12_345_678).display_with(2), "12.34");
        assert_eq!(Amount::from_micros(12_345_678).display_with(0), "12");
    }

    #[test]
    fn grouped_display_puts_commas_between_thousands() {
        let table = [
            (0, 2, "0.00"),
            (999_990_000, 2, "999.99"),
            (1_000_000_000, 2, "1,000.00"),
            (123_456_789_000_000, 2, "123,456,789.00"),
            (-1_234_567_000_000, 0, "-1,234,567"),
            (12_500, 4, "0.0125"),
        ];
        for (micros, decimals, text) in table {
            assert_eq!(Amount::from_micros(micros).display_grouped(decimals), text);
        }
    }

    #[test]
    fn amounts_travel_as_json_strings() {
        let json = serde_json::to_string(&Amount::from_micros(2_500_000)).unwrap();
        assert_eq!(json, "\"2.50\"");
        assert_eq!(serde_json::from_str::<Amount>("\"0.0125\"").unwrap(), Amount::from_micros(12_500));
        assert!(serde_json::from_str::<Amount>("2.5").is_err(), "a JSON number is refused");
    }

    #[test]
    fn a_rate_takes_its_share_rounded_down() {
        let half_percent = Rate::from_ppm(5_000).unwrap();
        // 0.5 % of 2.50 is 0.0125 exactly; of 0.000199 it is 0.000000995 → 0.
        assert_eq!(half_percent.share_of(Amount::from_micros(2_500_000)), Amount::from_micros(12_500));
        assert_eq!(half_percent.share_of(Amount::from_micros(199)), Amount::ZERO);
        assert_eq!(half_percent.share_of(Amount::from_micros(-5)), Amount::ZERO);
        assert_eq!(
            Rate::from_ppm(1_000_000).unwrap().share_of(Amount::from_micros(i64::MAX)).micros(),
            i64::MAX
        );
        assert_eq!(Rate::from_ppm(1_000_001), Err(RateError));
    }

    #[test]
    fn currency_codes_name_their_money_mode() {
        let table = [
            ("EUR", MoneyMode::Real),
            ("XTR", MoneyMode::Real),
            ("CHIPS", MoneyMode::Demo),
            ("PLAYCHIP", MoneyMode::Demo),
        ];
        for (code, mode) in table {
            let currency: Currency = code.parse().unwrap();
            assert_eq!((currency.as_str(), currency.money_mode()), (code, mode));
        }
        for bad in ["eur", "EU", "E1R", "", "CHIPSCHIP", "CHIPs", "ÉUR"] {
            assert_eq!(bad.parse::<Currency>(), Err(CurrencyError), "{bad}");
        }
    }

    #[test]
    fn a_total_goes_on_past_the_64_bit_range_exactly() {
        let past = Total::from_micros(i128::from(i64::MAX) + 2_000_000);
        assert_eq!(past.to_string(), "9223372036856.775807");
        assert_eq!(serde_json::to_value(past).unwrap(), serde_json::json!("9223372036856.775807"));
        let largest = Total::from_micros(i128::MAX);
        assert_eq!(largest.to_string(), "170141183460469231731687303715884.105727");
        assert_eq!(Total::from_micros(-1_500_000).to_string(), "-1.50");
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(micros in any::<i64>().prop_filter("i64::MIN has no positive twin", |m| *m != i64::MIN)) {
            let amount = Amount::from_micros(micros);
            prop_assert_eq!(amount.to_string().parse::<Amount>(), Ok(amount));
        }

        #[test]
        fn the_canonical_form_is_the_full_decimal_trimmed_to_two_places(
            // Any number with zero to six trailing zeros, so every trimmed width occurs.
            micros in (any::<i128>(), 0..=SCALE).prop_map(|(m, zeros)| m / 10_i128.pow(zeros) * 10_i128.pow(zeros)),
        ) {
            // The rule stated plainly, on strings: all six decimals, then
            // trailing zeros dropped while more than two remain.
            let full = decimal(micros, SCALE);
            let (int, frac) = full.split_once('.').unwrap();
            let mut frac = frac.to_owned();
            while frac.len() > 2 && frac.ends_with('0') {
                frac.pop();
            }
            prop_assert_eq!(Total::from_micros(micros).to_string(), format!("{int}.{frac}"));
        }

        #[test]
        fn a_total_reads_as_the_amount_it_counts(micros in any::<i64>()) {
            let amount = Amount::from_micros(micros);
            prop_assert_eq!(Total::from(amount).to_string(), amount.to_string());
        }

        #[test]
        fn a_share_never_exceeds_its_amount_nor_goes_negative(micros in any::<i64>(), ppm in 0..=Rate::PPM_MAX) {
            let share = Rate::from_ppm(ppm).unwrap().share_of(Amount::from_micros(micros));
            prop_assert!(share.micros() >= 0);
            prop_assert!(share.micros() <= micros.max(0));
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = text.parse::<Amount>();
        }
    }
}
