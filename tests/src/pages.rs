//! A page queue that keeps what a fan-out queued, for tests and benches that run the page
//! worker's part themselves.

use std::sync::Mutex;

use async_trait::async_trait;
use statecast::ports::{PageQueue, QueuedPage};

#[derive(Default)]
pub struct CapturedPages(Mutex<Vec<QueuedPage>>);

impl CapturedPages {
    /// The pages queued since the last take, in order.
    pub fn take(&self) -> Vec<QueuedPage> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl PageQueue for CapturedPages {
    async fn enqueue(&self, pages: Vec<QueuedPage>) -> statecast::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend(pages);
        Ok(())
    }
}
