//! Each service key's bets per UTC day, held against its
//! `daily_volume_max_micros` before a contribution is queued. In Redis
//! (`INCRBY`, expiring after two days) when configured, so every instance
//! counts the same; in this process when running single-instance.
//!
//! A bet is reserved before the engine sees it and released when the engine
//! refuses it or fails; a replayed request (same idempotency key) is counted
//! again, so the limit errs on the side of refusing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use crate::cache::Redis;

/// How long a day's counter is kept in Redis: the day and the next.
const KEEP_S: i64 = 2 * 86_400;

#[derive(Clone)]
pub enum Volumes {
    Redis(Redis),
    Local(Arc<Mutex<HashMap<(String, NaiveDate), i64>>>),
}

/// A reservation refused: what the key had bet that day before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub bet_today_micros: i64,
}

impl Volumes {
    pub fn new(redis: Option<Redis>) -> Volumes {
        match redis {
            Some(redis) => Volumes::Redis(redis),
            None => Volumes::Local(Arc::default()),
        }
    }

    /// Adds `micros` to the key's total of `day` unless that passes `max`.
    /// An `Err` means Redis could not say: the caller refuses (fails closed).
    pub async fn reserve(
        &self,
        key_id: &str,
        day: NaiveDate,
        micros: i64,
        max: i64,
    ) -> redis::RedisResult<Result<(), OverLimit>> {
        match self {
            Volumes::Redis(redis) => {
                let name = name(key_id, day);
                let mut connection = redis.connection().await?;
                let (total, _): (i64, i64) = redis::pipe()
                    .atomic()
                    .incr(&name, micros)
                    .expire(&name, KEEP_S)
                    .query_async(&mut connection)
                    .await?;
                if total > max {
                    let _: i64 =
                        redis::cmd("DECRBY").arg(&name).arg(micros).query_async(&mut connection).await?;
                    return Ok(Err(OverLimit { bet_today_micros: total - micros }));
                }
                Ok(Ok(()))
            }
            Volumes::Local(local) => {
                let mut local = local.lock().expect("the volume map is never poisoned");
                // Yesterday's are kept (a request may straddle midnight), older ones dropped.
                local.retain(|(_, d), _| (day - *d).num_days() <= 1);
                let total = local.entry((key_id.to_owned(), day)).or_default();
                if *total + micros > max {
                    return Ok(Err(OverLimit { bet_today_micros: *total }));
                }
                *total += micros;
                Ok(Ok(()))
            }
        }
    }

    /// Gives back a reservation whose bet was not taken.
    pub async fn release(&self, key_id: &str, day: NaiveDate, micros: i64) -> redis::RedisResult<()> {
        match self {
            Volumes::Redis(redis) => {
                let mut connection = redis.connection().await?;
                let _: i64 = redis::cmd("DECRBY")
                    .arg(name(key_id, day))
                    .arg(micros)
                    .query_async(&mut connection)
                    .await?;
                Ok(())
            }
            Volumes::Local(local) => {
                let mut local = local.lock().expect("the volume map is never poisoned");
                if let Some(total) = local.get_mut(&(key_id.to_owned(), day)) {
                    *total -= micros;
                }
                Ok(())
            }
        }
    }
}

fn name(key_id: &str, day: NaiveDate) -> String {
    format!("cekpot:volume:{key_id}:{day}")
}
