//! Periodic background work in local mode (TTL sweeps, workflow timer sweeps): run a task
//! every interval until shutdown is signalled.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Spawns a loop that waits `interval`, then awaits `task()`, until `shutdown` turns true
/// (a wait in progress ends at once; a task in progress finishes first).
pub fn spawn_every<F, Fut>(interval: Duration, mut shutdown: watch::Receiver<bool>, mut task: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let stopping = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = &mut stopping => return,
            }
            task().await;
        }
    })
}
