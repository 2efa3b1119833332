//! Typed ids: a Mini App player's, an outside provider's player's, a
//! jackpot's and a game's. Each is parsed once, where it enters, and is known
//! good after; none can be passed where another is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest id a caller may name a game, jackpot, provider or player by.
pub const REFERENCE_LENGTH_MAX: usize = 64;

/// Why a string is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id is 1 to {REFERENCE_LENGTH_MAX} characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit")]
    Malformed,
    #[error("a player id is a positive whole number")]
    NotAPlayerId,
}

/// Ids from callers (games, jackpots, players, sessions): 1 to 64 characters
/// of `[A-Za-z0-9._:-]`, starting with a letter or digit. No `/`, so a
/// provider and its player's id can be joined by one unambiguously.
pub fn check_reference(value: &str) -> Result<(), IdError> {
    let valid = (1..=REFERENCE_LENGTH_MAX).contains(&value.len())
        && value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(IdError::Malformed)
    }
}

/// A Mini App player: the `players` row, keyed by Cekpot (not Telegram's user id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct PlayerId(i64);

impl PlayerId {
    pub fn new(id: i64) -> Result<PlayerId, IdError> {
        if id > 0 {
            Ok(PlayerId(id))
        } else {
            Err(IdError::NotAPlayerId)
        }
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PlayerId {
    type Error = IdError;
    fn try_from(id: i64) -> Result<PlayerId, IdError> {
        PlayerId::new(id)
    }
}

impl From<PlayerId> for i64 {
    fn from(id: PlayerId) -> i64 {
        id.0
    }
}

impl FromStr for PlayerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<PlayerId, IdError> {
        // Decimal digits only: no sign, no spaces, no leading zeros.
        if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::NotAPlayerId);
        }
        s.parse::<i64>().map_err(|_| IdError::NotAPlayerId).and_then(PlayerId::new)
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! reference_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<$name, IdError> {
                check_reference(s).map(|()| $name(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<$name, IdError> {
                check_reference(&s).map(|()| $name(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

reference_id!(
    /// A game whose bets feed jackpots: the house slot's or a provider's.
    GameId
);
reference_id!(
    /// A configured jackpot.
    JackpotId
);
reference_id!(
    /// An outside game provider, as the service keys configuration names it;
    /// several keys (rotation) may belong to one provider.
    ProviderId
);
reference_id!(
    /// A player as an outside provider names them: meaningful only together
    /// with the provider (see [`ExternalPlayer`]).
    ExternalPlayerId
);

/// A provider's player. Provider A's `42`, provider B's `42` and the Mini App's
/// player 42 are three people with three wallets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalPlayer {
    pub provider: ProviderId,
    pub player: ExternalPlayerId,
}

impl ExternalPlayer {
    /// The owner of this player's wallet in the ledger: `<provider>/<player>`.
    /// `/` appears in neither part, so no two external players share one,
    /// and it never equals a Mini App player's owner (digits only).
    pub fn wallet_owner(&self) -> String {
        ExternalPlayer::owner_of(&self.provider, self.player.as_str())
    }

    /// The wallet owner of the player `player` of `provider` names, for a
    /// caller holding the id as checked text ([`check_reference`]).
    pub fn owner_of(provider: &ProviderId, player: &str) -> String {
        format!("{provider}/{player}")
    }

    /// The inverse of [`wallet_owner`](Self::wallet_owner).
    pub fn from_wallet_owner(owner: &str) -> Result<ExternalPlayer, IdError> {
        let (provider, player) = owner.split_once('/').ok_or(IdError::Malformed)?;
        Ok(ExternalPlayer { provider: provider.parse()?, player: player.parse()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn references_are_plain_identifiers() {
        for good in ["a", "game-1", "Provider:Slot_9.2", &"x".repeat(64)] {
            assert_eq!(check_reference(good), Ok(()), "{good}");
        }
        for bad in ["", "-lead", "has space", "emoji😀", &"x".repeat(65), "semi;colon", "a/b", ".x"] {
            assert_eq!(check_reference(bad), Err(IdError::Malformed), "{bad}");
        }
    }

    #[test]
    fn player_ids_are_positive_decimal_numbers() {
        assert_eq!("42".parse::<PlayerId>().map(PlayerId::get), Ok(42));
        for bad in ["", "0", "-1", "+1", "01", " 1", "1e3", "9223372036854775808"] {
            assert_eq!(bad.parse::<PlayerId>(), Err(IdError::NotAPlayerId), "{bad:?}");
        }
        assert_eq!(serde_json::from_str::<PlayerId>("7").unwrap().get(), 7);
        assert!(serde_json::from_str::<PlayerId>("0").is_err());
    }

    #[test]
    fn typed_ids_refuse_what_is_not_one_when_deserialised() {
        assert_eq!(serde_json::from_str::<GameId>("\"cekpot-slot\"").unwrap().as_str(), "cekpot-slot");
        assert!(serde_json::from_str::<JackpotId>("\"no/slash\"").is_err());
    }

    proptest! {
        #[test]
        fn external_wallet_owners_never_collide_and_never_look_like_a_mini_app_player(
            a in "[a-z0-9][a-z0-9:._-]{0,20}", b in "[a-z0-9][a-z0-9:._-]{0,20}",
            c in "[a-z0-9][a-z0-9:._-]{0,20}", d in "[a-z0-9][a-z0-9:._-]{0,20}",
        ) {
            let one = ExternalPlayer { provider: a.parse().unwrap(), player: b.parse().unwrap() };
            let two = ExternalPlayer { provider: c.parse().unwrap(), player: d.parse().unwrap() };
            prop_assert_eq!(one.wallet_owner() == two.wallet_owner(), one == two);
            prop_assert!(one.wallet_owner().parse::<PlayerId>().is_err());
            prop_assert_eq!(ExternalPlayer::from_wallet_owner(&one.wallet_owner()).unwrap(), one);
        }
    }
}
