//! The slot: a 5×3 line game defined entirely by data (reel strips, paytable,
//! paylines), how a set of reel stops pays, and its exact return.
//!
//! A line pays when its leftmost symbols match: three, four or five of a kind
//! starting on the first reel, at the paytable's multiple of the line bet. The
//! line bet is the bet divided by the number of lines; bets are whole
//! multiples of the line count in micro-units (the server enforces a bet step
//! that is), so every win is an exact number of micro-units and nothing is
//! rounded.

use std::collections::HashMap;

use serde::Deserialize;

use crate::money::Amount;

pub const REELS: usize = 5;
pub const ROWS: usize = 3;

/// The game as written in its config file (`server/config/slot.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDefinition {
    /// The game id its contributions are made under (`cekpot-slot`).
    pub game_id: String,
    /// The total return the game is designed for, jackpot contributions
    /// included, in parts per million of the amount bet (960000 = 96 %).
    pub target_rtp_ppm: u32,
    /// How far the computed total may be from the target, in ppm.
    pub target_tolerance_ppm: u32,
    pub symbols: Vec<SymbolDefinition>,
    /// Five strips of symbol ids, top to bottom; each wraps around.
    pub reels: Vec<Vec<String>>,
    /// Each line names one row (0 top, 1 middle, 2 bottom) per reel.
    pub paylines: Vec<[u8; REELS]>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolDefinition {
    pub id: String,
    pub name: String,
    /// Multiples of the line bet for three, four and five of a kind.
    pub pays: [u32; 3],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("a slot has exactly {REELS} reels; this one has {0}")]
    ReelCount(usize),
    #[error("reel {0} is shorter than {ROWS} symbols")]
    ReelTooShort(usize),
    #[error("reel {reel} names the unknown symbol {symbol:?}")]
    UnknownSymbol { reel: usize, symbol: String },
    #[error("the symbol id {0:?} is defined twice")]
    DuplicateSymbol(String),
    #[error("a slot needs between 1 and 50 paylines")]
    LineCount,
    #[error("payline {0} names a row outside 0..{ROWS}")]
    LineRow(usize),
    #[error("payline {0} repeats another")]
    DuplicateLine(usize),
    #[error("the game id must be 1 to 64 letters, digits, '.', '_', ':' or '-'")]
    GameId,
}

/// A checked definition, with symbols as indexes, ready to evaluate spins.
#[derive(Debug, Clone)]
pub struct Slot {
    pub game_id: String,
    pub target_rtp_ppm: u32,
    pub target_tolerance_ppm: u32,
    pub symbols: Vec<SymbolDefinition>,
    /// Symbol indexes.
    pub reels: [Vec<u8>; REELS],
    pub paylines: Vec<[u8; REELS]>,
}

impl TryFrom<SlotDefinition> for Slot {
    type Error = SlotError;

    fn try_from(definition: SlotDefinition) -> Result<Slot, SlotError> {
        let id_ok = (1..=64).contains(&definition.game_id.len())
            && definition.game_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !id_ok {
            return Err(SlotError::GameId);
        }
        let mut index = HashMap::new();
        for (at, symbol) in definition.symbols.iter().enumerate() {
            if index.insert(symbol.id.as_str(), at as u8).is_some() || at > u8::MAX as usize {
                return Err(SlotError::DuplicateSymbol(symbol.id.clone()));
            }
        }
        if definition.reels.len() != REELS {
            return Err(SlotError::ReelCount(definition.reels.len()));
        }
        let mut reels: [Vec<u8>; REELS] = Default::default();
        for (reel, strip) in definition.reels.iter().enumerate() {
            if strip.len() < ROWS {
                return Err(SlotError::ReelTooShort(reel));
            }
            reels[reel] = strip
                .iter()
                .map(|symbol| {
                    index
                        .get(symbol.as_str())
                        .copied()
                        .ok_or_else(|| SlotError::UnknownSymbol { reel, symbol: symbol.clone() })
                })
                .collect::<Result<_, _>>()?;
        }
        if definition.paylines.is_empty() || definition.paylines.len() > 50 {
            return Err(SlotError::LineCount);
        }
        for (at, line) in definition.paylines.iter().enumerate() {
            if line.iter().any(|&row| row as usize >= ROWS) {
                return Err(SlotError::LineRow(at));
            }
            if definition.paylines[..at].contains(line) {
                return Err(SlotError::DuplicateLine(at));
            }
        }
        Ok(Slot {
            game_id: definition.game_id,
            target_rtp_ppm: definition.target_rtp_ppm,
            target_tolerance_ppm: definition.target_tolerance_ppm,
            symbols: definition.symbols,
            reels,
            paylines: definition.paylines,
        })
    }
}

/// One paying line of a spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineWin {
    /// Index into the paylines.
    pub line: usize,
    pub symbol: u8,
    /// How many of a kind, from the left: 3, 4 or 5.
    pub count: usize,
    /// Multiple of the line bet.
    pub multiplier: u32,
}

/// What a set of stops shows and pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stops: [usize; REELS],
    /// Symbol indexes, `window[reel][row]`.
    pub window: [[u8; ROWS]; REELS],
    pub line_wins: Vec<LineWin>,
    /// The sum of the line wins' multipliers, in line bets.
    pub line_bets_won: u64,
}

impl Slot {
    pub fn reel_lengths(&self) -> [usize; REELS] {
        std::array::from_fn(|reel| self.reels[reel].len())
    }

    pub fn lines(&self) -> u64 {
        self.paylines.len() as u64
    }

    /// What the reels show when stopped at `stops`: the stop is the top row.
    pub fn window(&self, stops: [usize; REELS]) -> [[u8; ROWS]; REELS] {
        std::array::from_fn(|reel| {
            let strip = &self.reels[reel];
            std::array::from_fn(|row| strip[(stops[reel] + row) % strip.len()])
        })
    }

    /// Evaluates the stops. Panics if a stop is outside its reel (callers draw
    /// stops with [`crate::seeds::stops`], which never is).
    pub fn outcome(&self, stops: [usize; REELS]) -> Outcome {
        for (reel, &stop) in stops.iter().enumerate() {
            assert!(stop < self.reels[reel].len(), "stop {stop} is outside reel {reel}");
        }
        let window = self.window(stops);
        let mut line_wins = Vec::new();
        for (line, rows) in self.paylines.iter().enumerate() {
            if let Some(win) = self.line_win(&window, rows) {
                line_wins.push(LineWin { line, ..win });
            }
        }
        let line_bets_won = line_wins.iter().map(|w| u64::from(w.multiplier)).sum();
        Outcome { stops, window, line_wins, line_bets_won }
    }

    fn line_win(&self, window: &[[u8; ROWS]; REELS], rows: &[u8; REELS]) -> Option<LineWin> {
        let symbol = window[0][rows[0] as usize];
        let count = 1 + (1..REELS).take_while(|&reel| window[reel][rows[reel] as usize] == symbol).count();
        let multiplier = self.pay(symbol, count);
        (multiplier > 0).then_some(LineWin { line: 0, symbol, count, multiplier })
    }

    fn pay(&self, symbol: u8, count: usize) -> u32 {
        match count {
            3..=5 => self.symbols[symbol as usize].pays[count - 3],
            _ => 0,
        }
    }

    /// The win for `bet` (a multiple of [`Slot::lines`] micro-units, so exact).
    pub fn win(&self, bet: Amount, outcome: &Outcome) -> Amount {
        let line_bet = bet.micros() / self.lines() as i64;
        Amount::from_micros(line_bet * outcome.line_bets_won as i64)
    }

    /// The exact return, by evaluating every combination of stops.
    pub fn enumerate(&self) -> Rtp {
        let windows: [Vec<[u8; ROWS]>; REELS] = std::array::from_fn(|reel| {
            let strip = &self.reels[reel];
            (0..strip.len())
                .map(|stop| std::array::from_fn(|row| strip[(stop + row) % strip.len()]))
                .collect()
        });
        let lengths = self.reel_lengths();
        let mut rtp = Rtp {
            combinations: lengths.iter().map(|&l| l as u64).product(),
            lines: self.lines(),
            line_bets_won: 0,
            winning_combinations: 0,
        };
        let mut window = [[0u8; ROWS]; REELS];
        for a in &windows[0] {
            window[0] = *a;
            for b in &windows[1] {
                window[1] = *b;
                for c in &windows[2] {
                    window[2] = *c;
                    for d in &windows[3] {
                        window[3] = *d;
                        for e in &windows[4] {
                            window[4] = *e;
                            let won: u64 = self
                                .paylines
                                .iter()
                                .filter_map(|rows| self.line_win(&window, rows))
                                .map(|w| u64::from(w.multiplier))
                                .sum();
                            rtp.line_bets_won += u128::from(won);
                            rtp.winning_combinations += u64::from(won > 0);
                        }
                    }
                }
            }
        }
        rtp
    }

    /// The same return computed another way: every line sees each reel's
    /// symbols in proportion to their count on the strip, independently of
    /// the other reels, so one line's expected pay follows from symbol counts
    /// alone. Used to check [`Slot::enumerate`]; it cannot give the hit
    /// frequency, which depends on how the lines overlap.
    pub fn line_bets_won_by_counts(&self) -> u128 {
        let lengths = self.reel_lengths().map(|l| l as u128);
        let count =
            |reel: usize, symbol: u8| self.reels[reel].iter().filter(|&&s| s == symbol).count() as u128;
        let mut per_line = 0u128;
        for symbol in 0..self.symbols.len() as u8 {
            for run in 3..=REELS {
                let pay = u128::from(self.pay(symbol, run));
                if pay == 0 {
                    continue;
                }
                // The first `run` reels show the symbol, the next one (if any) does not.
                let mut ways: u128 = (0..run).map(|reel| count(reel, symbol)).product();
                if run < REELS {
                    ways *= lengths[run] - count(run, symbol);
                }
                ways *= lengths[(run + 1).min(REELS)..].iter().product::<u128>();
                per_line += pay * ways;
            }
        }
        per_line * u128::from(self.lines())
    }
}

/// The exact return of a slot over all its stop combinations, as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp {
    pub combinations: u64,
    pub lines: u64,
    /// Line bets won over all combinations, all lines.
    pub line_bets_won: u128,
    /// Combinations where at least one line pays.
    pub winning_combinations: u64,
}

impl Rtp {
    /// The base game's return in parts per billion of the amount bet, rounded
    /// down: line bets won over line bets staked.
    pub fn base_ppb(&self) -> u64 {
        (self.line_bets_won * 1_000_000_000 / (u128::from(self.combinations) * u128::from(self.lines))) as u64
    }

    /// The share of spins that win anything, in parts per billion, rounded down.
    pub fn hit_frequency_ppb(&self) -> u64 {
        (u128::from(self.winning_combinations) * 1_000_000_000 / u128::from(self.combinations)) as u64
    }
}

/// `ppb` as a percentage with four decimals, truncated: 961234567 → "96.1234 %".
pub fn percent(ppb: u64) -> String {
    format!("{}.{:04} %", ppb / 10_000_000, ppb % 10_000_000 / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small slot whose return can be worked out by hand.
    fn tiny() -> Slot {
        let symbol = |id: &str, pays| SymbolDefinition { id: id.into(), name: id.into(), pays };
        Slot::try_from(SlotDefinition {
            game_id: "tiny".into(),
            target_rtp_ppm: 0,
            target_tolerance_ppm: 0,
            symbols: vec![symbol("a", [1, 2, 10]), symbol("b", [0, 0, 0])],
            reels: vec![vec!["a".into(), "b".into(), "b".into(), "b".into()]; REELS],
            paylines: vec![[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]],
        })
        .unwrap()
    }

    #[test]
    fn lines_pay_from_the_left_and_only_three_or_more() {
        let slot = tiny();
        // Stops 3 put "a" (index 0) in the middle row: strips read b,a,b.
        let outcome = slot.outcome([3, 3, 3, 0, 0]);
        assert_eq!(outcome.window[0], [1, 0, 1]);
        assert_eq!(outcome.line_wins, vec![LineWin { line: 0, symbol: 0, count: 3, multiplier: 1 }]);
        assert_eq!(outcome.line_bets_won, 1);
        assert_eq!(slot.outcome([3, 3, 3, 3, 3]).line_bets_won, 10);
        assert_eq!(slot.outcome([0, 0, 0, 0, 0]).line_bets_won, 10, "the top line");
        assert_eq!(slot.outcome([3, 3, 1, 3, 3]).line_bets_won, 0, "a gap on reel 3 breaks the line");
        assert_eq!(
            slot.win(Amount::from_micros(2_000_000), &slot.outcome([3, 3, 3, 3, 3])).micros(),
            10_000_000
        );
    }

    #[test]
    fn the_return_is_worked_out_by_hand() {
        // One line: P(a on a reel) = 1/4. Three exactly: (1/4)^3·(3/4) pays 1,
        // four exactly: (1/4)^4·(3/4) pays 2, five: (1/4)^5 pays 10.
        // In 1/1024ths: 12·1 + 3·2 + 1·10 = 28 → 28/1024 line bets per line.
        let rtp = tiny().enumerate();
        assert_eq!(rtp.combinations, 1024);
        assert_eq!(rtp.line_bets_won, 2 * 28);
        assert_eq!(rtp.base_ppb(), 27_343_750);
        // A line wins when reels 1–3 show "a" on it: 1/64 per line, and the
        // two lines cannot both win (a reel shows "a" in one row only).
        assert_eq!(rtp.winning_combinations, 2 * 16);
        assert_eq!(tiny().line_bets_won_by_counts(), rtp.line_bets_won);
        assert_eq!(percent(rtp.base_ppb()), "2.7343 %");
    }

    #[test]
    fn bad_definitions_are_refused_with_their_reason() {
        let good = || SlotDefinition {
            game_id: "g".into(),
            target_rtp_ppm: 0,
            target_tolerance_ppm: 0,
            symbols: vec![SymbolDefinition { id: "a".into(), name: "A".into(), pays: [1, 2, 3] }],
            reels: vec![vec!["a".into(); 3]; REELS],
            paylines: vec![[0; REELS]],
        };
        assert!(Slot::try_from(good()).is_ok());
        type Edit = Box<dyn Fn(&mut SlotDefinition)>;
        let cases: Vec<(Edit, SlotError)> = vec![
            (Box::new(|d| d.reels.pop().map(drop).unwrap_or(())), SlotError::ReelCount(4)),
            (Box::new(|d| d.reels[2].truncate(2)), SlotError::ReelTooShort(2)),
            (
                Box::new(|d| d.reels[1][0] = "z".into()),
                SlotError::UnknownSymbol { reel: 1, symbol: "z".into() },
            ),
            (Box::new(|d| d.symbols.push(d.symbols[0].clone())), SlotError::DuplicateSymbol("a".into())),
            (Box::new(|d| d.paylines.clear()), SlotError::LineCount),
            (Box::new(|d| d.paylines[0][4] = 3), SlotError::LineRow(0)),
            (Box::new(|d| d.paylines.push([0; REELS])), SlotError::DuplicateLine(1)),
            (Box::new(|d| d.game_id = "bad id".into()), SlotError::GameId),
        ];
        for (edit, error) in cases {
            let mut definition = good();
            edit(&mut definition);
            assert_eq!(Slot::try_from(definition).unwrap_err(), error);
        }
    }
}
