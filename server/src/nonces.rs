//! Request nonces seen within the timestamp window, so a signed request is
//! accepted once. In Redis (`SET NX` with expiry) when configured, so a replay
//! to any instance is refused; in this process only when running
//! single-instance without Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::Redis;

/// How long a nonce is remembered: the whole window a timestamp is accepted in
/// (± the skew), with a margin.
pub const REMEMBER_FOR: Duration =
    Duration::from_secs(2 * domain::signing::TIMESTAMP_SKEW_MAX_SECONDS.unsigned_abs() + 60);

#[derive(Clone)]
pub enum Nonces {
    Redis(Redis),
    Local(Arc<Mutex<Local>>),
}

/// The nonces this process has seen, with when; expired ones are dropped at
/// most once a second.
pub struct Local {
    seen: HashMap<String, Instant>,
    purged_at: Instant,
}

impl Nonces {
    pub fn new(redis: Option<Redis>) -> Nonces {
        match redis {
            Some(redis) => Nonces::Redis(redis),
            None => {
                Nonces::Local(Arc::new(Mutex::new(Local { seen: HashMap::new(), purged_at: Instant::now() })))
            }
        }
    }

    /// Records the key's nonce; `Ok(false)` when it was seen before. An `Err`
    /// means Redis could not say: the caller refuses rather than risk a replay.
    pub async fn first_use(&self, key_id: &str, nonce: &str) -> redis::RedisResult<bool> {
        let name = format!("cekpot:nonce:{key_id}:{nonce}");
        match self {
            Nonces::Redis(redis) => {
                let mut connection = redis.connection().await?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(&name)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(REMEMBER_FOR.as_secs())
                    .query_async(&mut connection)
                    .await?;
                Ok(set.is_some())
            }
            Nonces::Local(local) => {
                let now = Instant::now();
                let mut local = local.lock().expect("the nonce map is never poisoned");
                if now.duration_since(local.purged_at) >= Duration::from_secs(1) {
                    local.seen.retain(|_, at| now.duration_since(*at) < REMEMBER_FOR);
                    local.purged_at = now;
                }
                match local.seen.get(&name) {
                    Some(at) if now.duration_since(*at) < REMEMBER_FOR => Ok(false),
                    _ => {
                        local.seen.insert(name, now);
                        Ok(true)
                    }
                }
            }
        }
    }
}
