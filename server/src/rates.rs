//! Request rates per client address and per player, held before a request
//! does any work: `http.ip_requests_per_window` and
//! `players.requests_per_window` per `http.rate_window_s`. In Redis when
//! configured (a counter per key and window, `INCR` + `EXPIRE`), so the limit
//! holds across instances; in this process otherwise, and while Redis does
//! not answer (governor's keyed GCRA limiter) — players keep playing through
//! a Redis outage, each instance then counting alone.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::cache::Redis;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    Player,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "ip",
            Scope::Player => "player",
        }
    }
}

/// A request over its limit: when the next one may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct Rates {
    redis: Option<Redis>,
    window: Duration,
    address_max: u32,
    player_max: u32,
    local: Arc<[DefaultKeyedRateLimiter<String>; 2]>,
}

impl Rates {
    pub fn new(redis: Option<Redis>, window: Duration, address_max: u32, player_max: u32) -> Rates {
        let window = window.max(Duration::from_secs(1));
        let quota = |max: u32| {
            let max = NonZeroU32::new(max.max(1)).expect("at least one");
            Quota::with_period(window / max.get()).expect("a positive period").allow_burst(max)
        };
        let local = Arc::new([RateLimiter::keyed(quota(address_max)), RateLimiter::keyed(quota(player_max))]);
        Rates { redis, window, address_max, player_max, local }
    }

    /// Counts one request of `id` in `scope`; `Err` when it is over the limit.
    pub async fn check(&self, scope: Scope, id: &str) -> Result<(), Limited> {
        let max = match scope {
            Scope::Address => self.address_max,
            Scope::Player => self.player_max,
        };
        if let Some(redis) = &self.redis {
            match self.count_in_redis(redis, scope, id).await {
                Ok((count, retry_after)) => {
                    return if count > u64::from(max) { Err(Limited { retry_after }) } else { Ok(()) };
                }
                Err(error) => {
                    tracing::debug!(%error, "rates: Redis did not answer; counting in this process")
                }
            }
        }
        let limiter = &self.local[scope as usize];
        // Forget idle keys now and then, so memory stays bounded.
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&id.to_owned())
            .map_err(|not_until| Limited { retry_after: not_until.wait_time_from(limiter.clock().now()) })
    }

    /// This window's count for the key, and the time left in the window.
    async fn count_in_redis(
        &self,
        redis: &Redis,
        scope: Scope,
        id: &str,
    ) -> redis::RedisResult<(u64, Duration)> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let window_ms = self.window.as_millis().max(1) as u64;
        let now_ms = now.as_millis() as u64;
        let index = now_ms / window_ms;
        let name = format!("cekpot:rate:{}:{id}:{index}", scope.as_str());
        let mut connection = redis.connection().await?;
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&name, 1u64)
            .expire(&name, (2 * window_ms / 1000).max(2) as i64)
            .query_async(&mut connection)
            .await?;
        Ok((count, Duration::from_millis((index + 1) * window_ms - now_ms)))
    }
}

/// The client's address: the last entry of `header` (what the nearest
/// proxy wrote) when the deployment names one, else the connection's peer.
pub fn client_address(
    headers: &axum::http::HeaderMap,
    header: Option<&str>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    let from_header = header
        .and_then(|header| headers.get(header))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    from_header.or(peer)
}
