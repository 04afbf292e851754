//! Per-actor queues inside one process: calls to the same actor wait their turn (first come,
//! first served) instead of racing each other's conditional writes. Across processes (Lambda
//! containers) the version check and the retry budget still decide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::ids::ActorKey;

/// One fair async lock per actor key with calls in flight; a key's entry goes with its last
/// holder, so the map holds only busy actors.
#[derive(Default)]
pub(super) struct KeyLocks {
    locks: Mutex<HashMap<ActorKey, Arc<AsyncMutex<()>>>>,
}

/// Held while a call runs; releasing it lets the next call of the same actor in.
pub(super) struct KeyTurn<'a> {
    locks: &'a KeyLocks,
    key: ActorKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for `key`'s turn (tokio's mutex is fair: waiters go in arrival order).
    pub(super) async fn turn(&self, key: &ActorKey) -> KeyTurn<'_> {
        let lock = self.map().entry(key.clone()).or_default().clone();
        let guard = lock.lock_owned().await;
        KeyTurn {
            locks: self,
            key: key.clone(),
            guard: Some(guard),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ActorKey, Arc<AsyncMutex<()>>>> {
        self.locks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn busy(&self) -> usize {
        self.map().len()
    }
}

impl Drop for KeyTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Only the map holds it now: nobody waits for this key.
        if map.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_call_per_actor_at_a_time_and_the_map_empties() {
        let locks = Arc::new(KeyLocks::default());
        let key = ActorKey::parse("t/counter/a").expect("key");
        let inside = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, key, inside) = (locks.clone(), key.clone(), inside.clone());
                tokio::spawn(async move {
                    let _turn = locks.turn(&key).await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "alone with the actor");
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(locks.busy(), 0, "no idle entry is kept");
    }
}
