//! Public reads served from memory: the lobby, `GET /api/jackpots` and
//! `/readyz` ask the database at most once per `http.public_cache_ms` however
//! many callers ask, so a crowd of players (or a flood) costs the database one
//! query per period, not one per request. One caller reads while the others
//! wait for its answer (single flight); a failed read is remembered for the
//! same period too, so an outage is not hammered either. Players see pool
//! values at most that old (live updates come over the WebSocket).

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// One value, read at most once per `max_age`.
pub struct Recent<T, E> {
    max_age: Duration,
    slot: Mutex<Option<(Instant, Result<T, E>)>>,
}

impl<T: Clone, E: Clone> Recent<T, E> {
    pub fn new(max_age: Duration) -> Recent<T, E> {
        Recent { max_age, slot: Mutex::new(None) }
    }

    /// The value read less than `max_age` ago, else what `read` answers now.
    pub async fn get<F, Fut>(&self, read: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, answer)) = &*slot {
            if at.elapsed() < self.max_age {
                return answer.clone();
            }
        }
        let answer = read().await;
        if !self.max_age.is_zero() {
            *slot = Some((Instant::now(), answer.clone()));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_crowd_costs_one_read_per_period_and_failures_are_remembered_too() {
        let recent = Arc::new(Recent::<u32, String>::new(Duration::from_millis(300)));
        let reads = Arc::new(AtomicU32::new(0));
        let read = |fail: bool| {
            let reads = reads.clone();
            move || async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
                if fail {
                    Err(format!("down at read {n}"))
                } else {
                    Ok(n)
                }
            }
        };
        let crowd: Vec<_> = (0..100)
            .map(|_| {
                let (recent, read) = (recent.clone(), read(false));
                tokio::spawn(async move { recent.get(read).await })
            })
            .collect();
        for answer in crowd {
            assert_eq!(answer.await.unwrap(), Ok(1));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for a hundred callers");
        tokio::time::sleep(Duration::from_millis(301)).await;
        assert_eq!(recent.get(read(true)).await, Err("down at read 2".to_owned()));
        assert_eq!(recent.get(read(false)).await, Err("down at read 2".to_owned()), "remembered");
        tokio::time::sleep(Duration::from_millis(301)).await;
        assert_eq!(recent.get(read(false)).await, Ok(3));
        let off = Recent::<u32, String>::new(Duration::ZERO);
        assert_eq!(off.get(read(false)).await, Ok(4));
        assert_eq!(off.get(read(false)).await, Ok(5), "a zero period keeps nothing");
    }
}
