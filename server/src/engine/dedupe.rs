//! Idempotency inside a batch, the one rule for contributions and spins: a
//! request whose key is stored answers its stored receipt when it asks for
//! the same thing (its fingerprint) and is refused when it asks for another;
//! a second request with the key of an earlier one in the same batch gets
//! that one's answer, or the same refusal.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hash;

/// How a request stands against the stored keys and the batch's earlier
/// requests.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen<'s, R> {
    /// A first request with its key: to be decided.
    New,
    /// The stored request under its key asked for the same: answer this.
    Stored(&'s R),
    /// Its key was used for a different request.
    Reused,
    /// The same request as an earlier one of the batch: it gets that one's
    /// answer ([`Dedupe::answer`]).
    Repeat,
}

/// The batch's keys seen so far.
pub(super) struct Dedupe<K> {
    first: HashMap<K, (usize, Vec<u8>)>,
    repeats: Vec<(usize, usize)>,
}

impl<K: Hash + Eq> Dedupe<K> {
    pub(super) fn new() -> Self {
        Dedupe { first: HashMap::new(), repeats: Vec::new() }
    }

    /// Request `index`, under `key`, with its `fingerprint`; `stored` is the
    /// request hash and receipt kept under the key, if any.
    pub(super) fn see<'s, R>(
        &mut self,
        index: usize,
        key: K,
        fingerprint: &[u8],
        stored: Option<&'s (Vec<u8>, R)>,
    ) -> Seen<'s, R> {
        if let Some((hash, receipt)) = stored {
            return if hash.as_slice() == fingerprint { Seen::Stored(receipt) } else { Seen::Reused };
        }
        match self.first.entry(key) {
            Entry::Occupied(first) => {
                let (first_index, first_fingerprint) = first.get();
                if first_fingerprint.as_slice() == fingerprint {
                    self.repeats.push((index, *first_index));
                    Seen::Repeat
                } else {
                    Seen::Reused
                }
            }
            Entry::Vacant(vacant) => {
                vacant.insert((index, fingerprint.to_vec()));
                Seen::New
            }
        }
    }

    /// The repeats, for [`answer`] once the first requests are answered.
    pub(super) fn into_repeats(self) -> Repeats {
        Repeats(self.repeats)
    }
}

/// Which requests repeat which earlier ones.
#[derive(Debug, Default)]
pub(super) struct Repeats(Vec<(usize, usize)>);

impl Repeats {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Every request's answer: its own, or for a repeat its first's.
pub(super) fn answer<T: Clone>(mut results: Vec<Option<T>>, repeats: Repeats) -> Vec<T> {
    for (index, first) in repeats.0 {
        results[index] = results[first].clone();
    }
    results.into_iter().map(|r| r.expect("every request gets an answer")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's key, fingerprint and stored receipt, and how it is seen.
    type Case<'s> =
        (&'static str, &'static [u8], Option<&'s (Vec<u8>, &'static str)>, Seen<'s, &'static str>);

    #[test]
    fn stored_keys_replay_or_refuse_and_repeats_get_their_first_answer() {
        let stored = (b"same".to_vec(), "stored receipt");
        let mut dedupe = Dedupe::new();
        let table: [Case<'_>; 6] = [
            ("a", b"same", Some(&stored), Seen::Stored(&"stored receipt")),
            ("b", b"other", Some(&stored), Seen::Reused),
            ("c", b"one", None, Seen::New),
            ("c", b"one", None, Seen::Repeat),
            ("c", b"two", None, Seen::Reused),
            ("d", b"one", None, Seen::New),
        ];
        for (index, (key, fingerprint, stored, expected)) in table.into_iter().enumerate() {
            assert_eq!(dedupe.see(index, key, fingerprint, stored), expected, "request {index}");
        }
        let repeats = dedupe.into_repeats();
        assert!(!repeats.is_empty());
        let results = vec![Some("A"), Some("B"), Some("C"), None, Some("E"), Some("F")];
        assert_eq!(answer(results, repeats), ["A", "B", "C", "C", "E", "F"]);
    }
}
