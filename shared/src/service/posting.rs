//! Posting one frame (or its ordered parts) to many connections through `@connections`, at a
//! concurrency that adapts to throttling: it grows by one per success until the first 429
//! (slow start), each 429 halves it (at most once per round of posts in flight) and the
//! connection is tried again after a back-off (spent outside the limit, so the slot goes to a
//! post that can go out now), and after that it grows by one per round of posts (additive
//! increase, multiplicative decrease). A connection that fails is retried on
//! its own, from the part it was at, so a retry never re-sends to one that already has it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::time::Instant;
use tracing::warn;

use crate::backoff;
use crate::error::{chain, Error};
use crate::ids::ConnectionId;
use crate::ports::ConnectionSender;

/// How a poster paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostLimits {
    /// Posts in flight at first.
    pub initial: usize,
    /// Posts in flight at most.
    pub max: usize,
    /// Tries per connection for a throttled or failed post before it is given up.
    pub attempts: u32,
    /// First back-off after a throttled or failed post (doubling, jittered).
    pub backoff: Duration,
}

impl Default for PostLimits {
    fn default() -> Self {
        Self {
            initial: 32,
            max: 256,
            attempts: 8,
            backoff: Duration::from_millis(20),
        }
    }
}

/// What posting to a set of connections did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Connections that got every frame.
    pub delivered: usize,
    /// Connections that answered 410.
    pub gone: Vec<ConnectionId>,
    /// Connections given up on (attempts used, or a post that can never succeed).
    pub undelivered: Vec<ConnectionId>,
    /// Posts answered 429 (each was tried again).
    pub throttled: usize,
    /// The concurrency at the end.
    pub concurrency: usize,
}

/// One connection's progress: the next part to send and the tries it has had.
struct Job {
    to: ConnectionId,
    frames: Arc<Vec<String>>,
    next: usize,
    attempt: u32,
}

enum Step {
    Done,
    Throttled(Job),
    Failed(Job, Error),
}

/// Posts through `sender` with `limits`.
pub struct Poster {
    sender: Arc<dyn ConnectionSender>,
    limits: PostLimits,
}

impl Poster {
    pub fn new(sender: Arc<dyn ConnectionSender>, limits: PostLimits) -> Self {
        Self { sender, limits }
    }

    /// Posts each connection its frames, in order.
    pub async fn post(&self, targets: Vec<(ConnectionId, Arc<Vec<String>>)>) -> Posted {
        let mut queue: VecDeque<Job> = targets
            .into_iter()
            .map(|(to, frames)| Job {
                to,
                frames,
                next: 0,
                attempt: 0,
            })
            .collect();
        let max = self.limits.max.max(1);
        let mut limit = self.limits.initial.clamp(1, max) as f64;
        let mut posted = Posted::default();
        let mut in_flight = FuturesUnordered::new();
        // Retries back off outside the limit: a slot goes to a post that can go out now.
        let mut waiting: FuturesUnordered<BoxFuture<'static, Job>> = FuturesUnordered::new();
        // A throttle halves the limit once per round: not again for posts started before it.
        let mut last_cut = Instant::now() - Duration::from_secs(3600);
        loop {
            while in_flight.len() < limit as usize {
                let Some(job) = queue.pop_front() else { break };
                in_flight.push(self.run(job));
            }
            if in_flight.is_empty() && waiting.is_empty() {
                break;
            }
            let (started, step) = tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => done,
                Some(job) = waiting.next(), if !waiting.is_empty() => {
                    queue.push_front(job);
                    continue;
                }
            };
            match step {
                Step::Done => {
                    posted.delivered += 1;
                    // Slow start until the first throttle (doubling per round trip), then
                    // one more per round trip.
                    let step = if posted.throttled == 0 { 1.0 } else { 1.0 / limit };
                    limit = (limit + step).min(max as f64);
                }
                Step::Throttled(job) => {
                    posted.throttled += 1;
                    if started > last_cut {
                        limit = (limit / 2.0).max(1.0);
                        last_cut = Instant::now();
                    }
                    self.again(job, &mut waiting, &mut posted, None);
                }
                Step::Failed(job, Error::ConnectionGone(_)) => posted.gone.push(job.to),
                Step::Failed(job, e) if e.is_retryable() => self.again(job, &mut waiting, &mut posted, Some(e)),
                Step::Failed(job, e) => {
                    warn!(connection = %job.to, error = %chain(&e), "could not post to a subscriber");
                    posted.undelivered.push(job.to);
                }
            }
        }
        posted.concurrency = limit as usize;
        posted
    }

    /// Queues `job` for another try after its back-off, or gives up on it.
    fn again(
        &self,
        mut job: Job,
        waiting: &mut FuturesUnordered<BoxFuture<'static, Job>>,
        posted: &mut Posted,
        error: Option<Error>,
    ) {
        job.attempt += 1;
        if job.attempt >= self.limits.attempts {
            let why = error.map_or_else(|| "throttled on every try".to_owned(), |e| chain(&e));
            warn!(connection = %job.to, attempts = job.attempt, error = %why, "gave up posting to a subscriber");
            posted.undelivered.push(job.to);
            return;
        }
        let wait = backoff::delay(job.attempt - 1, self.limits.backoff, Duration::from_secs(2));
        waiting.push(Box::pin(async move {
            tokio::time::sleep(wait).await;
            job
        }));
    }

    /// Sends `job`'s frames from its next part.
    async fn run(&self, mut job: Job) -> (Instant, Step) {
        let started = Instant::now();
        while job.next < job.frames.len() {
            match self.sender.send(&job.to, &job.frames[job.next]).await {
                Ok(()) => job.next += 1,
                Err(Error::Throttled { .. }) => return (started, Step::Throttled(job)),
                Err(e) => return (started, Step::Failed(job, e)),
            }
        }
        (started, Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    /// Answers 429 when more than `capacity` posts are in flight, fails each connection's
    /// first try of a frame ending in `1` when asked, and records what was delivered.
    struct Throttling {
        capacity: usize,
        in_flight: AtomicUsize,
        fail_first: bool,
        /// Tries per (connection, frame).
        tries: Mutex<HashMap<(ConnectionId, String), usize>>,
        delivered: Mutex<Vec<(ConnectionId, String)>>,
    }

    #[async_trait]
    impl ConnectionSender for Throttling {
        async fn send(&self, to: &ConnectionId, frame: &str) -> crate::Result<()> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::task::yield_now().await;
            let tries = {
                let mut tries = self.tries.lock().expect("lock");
                let n = tries.entry((to.clone(), frame.to_owned())).or_default();
                *n += 1;
                *n
            };
            let result = if now > self.capacity {
                Err(Error::Throttled {
                    operation: "PostToConnection",
                    source: "429".into(),
                })
            } else if self.fail_first && tries == 1 && frame.ends_with("1") {
                Err(Error::Dependency {
                    operation: "PostToConnection",
                    retryable: true,
                    source: "500".into(),
                })
            } else {
                self.delivered
                    .lock()
                    .expect("lock")
                    .push((to.clone(), frame.to_owned()));
                Ok(())
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    fn targets(n: usize, frames: &[&str]) -> Vec<(ConnectionId, Arc<Vec<String>>)> {
        let frames = Arc::new(frames.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>());
        (0..n)
            .map(|i| (ConnectionId::new(format!("c{i}")).expect("id"), frames.clone()))
            .collect()
    }

    fn sender(capacity: usize, fail_first: bool) -> Arc<Throttling> {
        Arc::new(Throttling {
            capacity,
            in_flight: AtomicUsize::new(0),
            fail_first,
            tries: Mutex::default(),
            delivered: Mutex::default(),
        })
    }

    #[tokio::test]
    async fn throttling_lowers_the_concurrency_and_everyone_gets_the_frame_once() {
        let throttling = sender(4, false);
        let limits = PostLimits {
            initial: 32,
            max: 64,
            attempts: 50,
            backoff: Duration::from_millis(1),
        };
        let posted = Poster::new(throttling.clone(), limits).post(targets(200, &["f"])).await;
        assert_eq!(posted.delivered, 200, "{posted:?}");
        assert!(posted.throttled > 0 && posted.undelivered.is_empty() && posted.gone.is_empty());
        assert!(posted.concurrency < 32, "the limit came down: {posted:?}");
        let delivered = throttling.delivered.lock().expect("lock");
        let mut once: Vec<&ConnectionId> = delivered.iter().map(|(to, _)| to).collect();
        once.sort();
        once.dedup();
        assert_eq!((delivered.len(), once.len()), (200, 200), "each exactly once");
    }

    #[tokio::test]
    async fn a_failed_part_is_retried_from_that_part_only() {
        let failing = sender(usize::MAX, true);
        let posted = Poster::new(failing.clone(), PostLimits::default())
            .post(targets(3, &["part-0", "part-1", "part-2"]))
            .await;
        assert_eq!((posted.delivered, posted.undelivered.len()), (3, 0));
        let delivered = failing.delivered.lock().expect("lock");
        for i in 0..3 {
            let to = ConnectionId::new(format!("c{i}")).expect("id");
            let parts: Vec<&str> = delivered
                .iter()
                .filter(|(c, _)| c == &to)
                .map(|(_, f)| f.as_str())
                .collect();
            assert_eq!(parts, ["part-0", "part-1", "part-2"], "{to}: no part twice");
        }
    }

    #[tokio::test]
    async fn a_connection_failing_every_try_is_given_up_alone() {
        let throttling = sender(0, false);
        let limits = PostLimits {
            attempts: 3,
            backoff: Duration::from_millis(1),
            ..PostLimits::default()
        };
        let posted = Poster::new(throttling, limits).post(targets(2, &["f"])).await;
        assert_eq!(
            (posted.delivered, posted.undelivered.len(), posted.throttled),
            (0, 2, 6)
        );
    }
}
