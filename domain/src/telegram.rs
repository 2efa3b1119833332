//! Telegram Mini App `initData`: parsing and verification exactly as Telegram
//! specifies (<https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app>).
//!
//! - The raw string is `application/x-www-form-urlencoded`: `key=value` pairs
//!   joined by `&`, `+` for a space, `%XX` escapes.
//! - The data-check-string is every received field but `hash` — a `signature`
//!   field included — as `key=<decoded value>`, sorted by key, joined by `\n`.
//! - The secret key is HMAC-SHA256 of the bot token under the key
//!   `"WebAppData"`; `hash` is the hex HMAC-SHA256 of the data-check-string
//!   under that secret key, compared in constant time.
//!
//! Values are used as received: the `user` JSON is parsed for the profile but
//! never re-serialised for the check. A key sent twice is refused.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The longest `initData` accepted, in bytes (Telegram's are well under 4 KiB).
pub const INIT_DATA_LENGTH_MAX: usize = 8 * 1024;

/// Why `initData` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitDataError {
    #[error("initData is not a well-formed query string: {0}")]
    Malformed(String),
    #[error("initData has no hash")]
    MissingHash,
    #[error("initData's hash is not 64 hex digits")]
    BadHashFormat,
    #[error(
        "initData's hash does not match its fields: it was not signed by this bot, or a field was changed"
    )]
    BadSignature,
    #[error("initData has no valid auth_date")]
    MissingAuthDate,
    #[error("initData is {age_seconds} s old; at most {max_age_seconds} s is accepted")]
    Stale { age_seconds: i64, max_age_seconds: i64 },
    #[error("initData has no valid user")]
    MissingUser,
}

/// The Telegram user `initData` names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TelegramUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
    #[serde(default)]
    pub is_premium: bool,
}

/// Verified `initData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitData {
    pub user: TelegramUser,
    /// Unix seconds.
    pub auth_date: i64,
    pub query_id: Option<String>,
    /// The verified `hash`: HMAC-SHA-256 over the canonical data-check string,
    /// so it names this launch however its fields were encoded.
    pub hash: [u8; 32],
    /// Every field as received and decoded, `hash` included.
    pub fields: BTreeMap<String, String>,
}

/// The fields of a raw `initData`, decoded; a repeated key is refused.
pub fn parse(raw: &str) -> Result<BTreeMap<String, String>, InitDataError> {
    if raw.len() > INIT_DATA_LENGTH_MAX {
        return Err(InitDataError::Malformed(format!("longer than {INIT_DATA_LENGTH_MAX} bytes")));
    }
    if raw.is_empty() {
        return Err(InitDataError::Malformed("empty".into()));
    }
    let mut fields = BTreeMap::new();
    for pair in raw.split('&') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| InitDataError::Malformed(format!("{pair:?} is not key=value")))?;
        let (key, value) = (decode(key)?, decode(value)?);
        if key.is_empty() {
            return Err(InitDataError::Malformed("a field has no name".into()));
        }
        if fields.contains_key(&key) {
            return Err(InitDataError::Malformed(format!("{key:?} is sent twice")));
        }
        fields.insert(key, value);
    }
    Ok(fields)
}

fn decode(text: &str) -> Result<String, InitDataError> {
    let spaced = text.replace('+', " ");
    if has_broken_escape(&spaced) {
        return Err(InitDataError::Malformed(format!("{text:?} has a broken %-escape")));
    }
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| InitDataError::Malformed(format!("{text:?} is not UTF-8 once decoded")))
}

/// A `%` not followed by two hex digits (which a decoder would pass through).
fn has_broken_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// `key=value` lines of every field but `hash`, sorted by key.
pub fn data_check_string(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .filter(|(key, _)| key.as_str() != "hash")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn secret_key(bot_token: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"WebAppData").expect("HMAC takes any key length");
    mac.update(bot_token.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn mac_of(bot_token: &str, fields: &BTreeMap<String, String>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_key(bot_token)).expect("HMAC takes any key length");
    mac.update(data_check_string(fields).as_bytes());
    mac
}

/// Verifies `raw` for `bot_token` at Unix time `now`; `max_age_seconds` bounds
/// how old `auth_date` may be (`None`: not checked — known-answer tests only).
pub fn verify(
    raw: &str,
    bot_token: &str,
    now: i64,
    max_age_seconds: Option<i64>,
) -> Result<InitData, InitDataError> {
    let fields = parse(raw)?;
    let hash = fields.get("hash").ok_or(InitDataError::MissingHash)?;
    if hash.len() != 64 {
        return Err(InitDataError::BadHashFormat);
    }
    let mut decoded = [0u8; 32];
    hex::decode_to_slice(hash, &mut decoded).map_err(|_| InitDataError::BadHashFormat)?;
    let hash = decoded;
    mac_of(bot_token, &fields).verify_slice(&hash).map_err(|_| InitDataError::BadSignature)?;
    let auth_date: i64 = fields
        .get("auth_date")
        .and_then(|date| date.parse().ok())
        .filter(|&date: &i64| date > 0)
        .ok_or(InitDataError::MissingAuthDate)?;
    if let Some(max_age_seconds) = max_age_seconds {
        let age_seconds = now - auth_date;
        // A little clock skew into the future is tolerated; more is refused.
        if age_seconds > max_age_seconds || age_seconds < -60 {
            return Err(InitDataError::Stale { age_seconds, max_age_seconds });
        }
    }
    let user: TelegramUser = fields
        .get("user")
        .and_then(|user| serde_json::from_str(user).ok())
        .ok_or(InitDataError::MissingUser)?;
    let query_id = fields.get("query_id").cloned();
    Ok(InitData { user, auth_date, query_id, hash, fields })
}

/// Signs `fields` (without `hash`) as Telegram does and answers the raw
/// `initData`, fields in the order given and `hash` last. For tests and the
/// development sign-in page, never for production traffic.
pub fn sign(fields: &[(&str, &str)], bot_token: &str) -> String {
    let map: BTreeMap<String, String> =
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let hash = hex::encode(mac_of(bot_token, &map).finalize().into_bytes());
    let encode = |text: &str| percent_encoding::utf8_percent_encode(text, COMPONENT).to_string();
    let mut parts: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    parts.push(format!("hash={hash}"));
    parts.join("&")
}

/// What `encodeURIComponent` leaves alone, as browsers encode query values.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ../shared/testdata/telegram-initdata.md
    const TOKEN: &str = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8";
    const KNOWN: &str = "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2";
    const KNOWN_AUTH_DATE: i64 = 1_662_771_648;
    const DAY: Option<i64> = Some(86_400);

    #[test]
    fn the_known_answer_vector_verifies() {
        let data = verify(KNOWN, TOKEN, KNOWN_AUTH_DATE + 10, DAY).unwrap();
        assert_eq!(data.user.id, 279_058_397);
        assert_eq!(data.user.first_name, "Vladislav");
        assert_eq!(data.user.username.as_deref(), Some("vdkfrost"));
        assert_eq!(data.user.language_code.as_deref(), Some("ru"));
        assert!(data.user.is_premium);
        assert_eq!(data.query_id.as_deref(), Some("AAHdF6IQAAAAAN0XohDhrOrc"));
        assert_eq!(data.auth_date, KNOWN_AUTH_DATE);
    }

    #[test]
    fn the_known_vector_is_stale_today_and_refused_for_another_bot() {
        let now = 1_795_000_000; // 2026
        assert!(matches!(verify(KNOWN, TOKEN, now, DAY), Err(InitDataError::Stale { .. })));
        assert_eq!(verify(KNOWN, "123:other", KNOWN_AUTH_DATE, DAY), Err(InitDataError::BadSignature));
    }

    #[test]
    fn any_single_changed_character_is_refused() {
        let bytes = KNOWN.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] = if bytes[i] == b'1' { b'2' } else { b'1' };
            let changed = String::from_utf8(changed).unwrap();
            assert!(verify(&changed, TOKEN, KNOWN_AUTH_DATE, DAY).is_err(), "byte {i} changed: {changed}");
        }
    }

    #[test]
    fn hash_first_middle_or_last_all_verify() {
        let parts: Vec<&str> = KNOWN.split('&').collect();
        let (hash, rest) = parts.split_last().unwrap();
        for at in 0..=rest.len() {
            let mut order = rest.to_vec();
            order.insert(at, hash);
            assert!(verify(&order.join("&"), TOKEN, KNOWN_AUTH_DATE, DAY).is_ok(), "hash at {at}");
        }
    }

    const BOT: &str = "7000000001:AAtest-token_for-cekpot";

    fn fresh(fields: &[(&str, &str)]) -> String {
        sign(fields, BOT)
    }

    const USER: &str = r#"{"id":42,"first_name":"Ayla \/ Ə","username":"ayla","language_code":"az","allows_write_to_pm":true}"#;

    #[test]
    fn a_signature_field_stays_in_the_check_before_or_after_hash() {
        let raw = fresh(&[("auth_date", "1700000000"), ("signature", "abc-def_ghi"), ("user", USER)]);
        assert!(verify(&raw, BOT, 1_700_000_000, DAY).is_ok());
        // Moved after hash: the same fields, so still valid.
        let mut parts: Vec<&str> = raw.split('&').collect();
        let signature = parts.remove(1);
        parts.push(signature);
        assert!(verify(&parts.join("&"), BOT, 1_700_000_000, DAY).is_ok());
        // Dropped: the check string changes.
        parts.pop();
        assert_eq!(verify(&parts.join("&"), BOT, 1_700_000_000, DAY), Err(InitDataError::BadSignature));
    }

    #[test]
    fn values_with_escapes_unicode_and_escaped_slashes_verify_as_received() {
        let user = r#"{"id":7,"first_name":"A=B & C+D","last_name":"Ünïcødé 🎰","username":"x\/y"}"#;
        let raw = fresh(&[("user", user), ("auth_date", "1700000000"), ("chat_type", "private")]);
        assert!(raw.contains("%26") && raw.contains("%2B") && raw.contains("%3D"), "{raw}");
        let data = verify(&raw, BOT, 1_700_000_000, DAY).unwrap();
        assert_eq!(data.fields["user"], user, "the JSON is kept as received, \\/ included");
        assert_eq!(data.user.first_name, "A=B & C+D");
        assert_eq!(data.user.username.as_deref(), Some("x/y"));
        // A space sent as '+' decodes to a space, as a browser's form encoding does.
        let plus = raw.replace("chat_type=private", "chat_type=private+chat");
        assert_eq!(verify(&plus, BOT, 1_700_000_000, DAY), Err(InitDataError::BadSignature));
        let signed_with_space =
            fresh(&[("user", user), ("auth_date", "1700000000"), ("chat_type", "private chat")]);
        let as_plus = signed_with_space.replace("private%20chat", "private+chat");
        assert!(verify(&as_plus, BOT, 1_700_000_000, DAY).is_ok());
    }

    #[test]
    fn query_id_may_be_absent() {
        let raw = fresh(&[("user", USER), ("auth_date", "1700000000")]);
        let data = verify(&raw, BOT, 1_700_000_100, DAY).unwrap();
        assert_eq!(data.query_id, None);
        assert_eq!(data.user.id, 42);
    }

    #[test]
    fn refusals_have_their_own_reason() {
        let now = 1_700_000_000;
        let good = fresh(&[("user", USER), ("auth_date", "1700000000")]);
        let no_hash = good.split("&hash=").next().unwrap().to_owned();
        let cases: Vec<(String, InitDataError)> = vec![
            (no_hash.clone(), InitDataError::MissingHash),
            (format!("{no_hash}&hash=zz{}", &"0".repeat(62)), InitDataError::BadHashFormat),
            (format!("{no_hash}&hash=abc"), InitDataError::BadHashFormat),
            (
                format!("{good}&auth_date=1700000001"),
                InitDataError::Malformed("\"auth_date\" is sent twice".into()),
            ),
            (String::new(), InitDataError::Malformed("empty".into())),
            ("user".into(), InitDataError::Malformed("\"user\" is not key=value".into())),
            (fresh(&[("user", USER)]), InitDataError::MissingAuthDate),
            (fresh(&[("auth_date", "1700000000")]), InitDataError::MissingUser),
            (fresh(&[("user", "{not json"), ("auth_date", "1700000000")]), InitDataError::MissingUser),
        ];
        for (raw, expected) in cases {
            assert_eq!(verify(&raw, BOT, now, DAY), Err(expected), "{raw}");
        }
        assert!(matches!(verify("a=%zz", BOT, now, DAY), Err(InitDataError::Malformed(_))));
        assert!(matches!(verify("a=%ff%fe", BOT, now, DAY), Err(InitDataError::Malformed(_))));
        let old = fresh(&[("user", USER), ("auth_date", "1600000000")]);
        assert_eq!(
            verify(&old, BOT, now, DAY),
            Err(InitDataError::Stale { age_seconds: 100_000_000, max_age_seconds: 86_400 })
        );
        let future = fresh(&[("user", USER), ("auth_date", "1700003600")]);
        assert!(matches!(verify(&future, BOT, now, DAY), Err(InitDataError::Stale { .. })));
        let long = format!("a={}", "x".repeat(INIT_DATA_LENGTH_MAX));
        assert!(matches!(verify(&long, BOT, now, DAY), Err(InitDataError::Malformed(_))));
    }

    #[test]
    fn each_single_field_tampering_of_fresh_data_is_refused() {
        let fields =
            [("query_id", "AAE1"), ("user", USER), ("auth_date", "1700000000"), ("chat_instance", "-12")];
        let raw = fresh(&fields);
        assert!(verify(&raw, BOT, 1_700_000_000, DAY).is_ok());
        for (index, (key, value)) in fields.iter().enumerate() {
            let mut tampered = fields;
            let changed = format!("{value}0");
            tampered[index] = (key, &changed);
            let forged_fields = sign(&tampered, BOT);
            // The tampered value with the original hash.
            let original_hash = raw.rsplit_once("&hash=").unwrap().1;
            let forged = format!("{}&hash={original_hash}", forged_fields.rsplit_once("&hash=").unwrap().0);
            assert_eq!(verify(&forged, BOT, 1_700_000_000, DAY), Err(InitDataError::BadSignature), "{key}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_string_is_answered_without_panicking(raw in ".{0,300}") {
            let _ = verify(&raw, BOT, 1_700_000_000, DAY);
        }

        #[test]
        fn query_like_strings_are_answered_without_panicking(raw in "([a-z_%=&+0-9A-F]|%[0-9A-Fa-f]{0,2}){0,200}") {
            let _ = verify(&raw, BOT, 1_700_000_000, DAY);
        }

        #[test]
        fn whatever_is_signed_verifies(name in ".{1,40}", auth in 1i64..4_000_000_000, extra in ".{0,40}") {
            let user = serde_json::json!({ "id": 5, "first_name": name }).to_string();
            let auth = auth.to_string();
            let raw = sign(&[("user", &user), ("auth_date", &auth), ("x", &extra)], BOT);
            let data = verify(&raw, BOT, 0, None).unwrap();
            prop_assert_eq!(data.user.first_name, name);
        }
    }
}
