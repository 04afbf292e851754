//! The page queue adapter: pages of a spread fan-out go to an SQS FIFO queue
//! (`aws-sdk-sqs` `SendMessageBatch`), read by the page worker function.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::backoff;
use crate::error::{Error, Result};
use crate::ports::{PageQueue, QueuedPage};
use crate::sdk_error::is_transient;

/// Messages per `SendMessageBatch`, and bytes (SQS's limits).
const BATCH_MESSAGES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// Sends of the entries SQS refused with a retryable error before the fan-out fails.
const ATTEMPTS: u32 = 5;

/// Sends pages to the queue at `url`.
#[derive(Clone, Debug)]
pub struct SqsPageQueue {
    client: Client,
    url: String,
}

impl SqsPageQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// One `SendMessageBatch`; returns the pages SQS refused with a retryable error.
    async fn send_batch(&self, pages: Vec<QueuedPage>) -> Result<Vec<QueuedPage>> {
        let entries = pages
            .iter()
            .enumerate()
            .map(|(i, page)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&page.body)
                    .message_group_id(&page.group)
                    .message_deduplication_id(&page.dedup)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Dependency {
                operation: "SendMessageBatch",
                retryable: false,
                source: Box::new(e),
            })?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| Error::Dependency {
                operation: "SendMessageBatch",
                retryable: is_transient(&e),
                source: Box::new(e),
            })?;
        let mut again = Vec::new();
        for failed in output.failed() {
            if failed.sender_fault() {
                return Err(Error::Dependency {
                    operation: "SendMessageBatch",
                    retryable: false,
                    source: format!(
                        "SQS refused a page: {} {}",
                        failed.code(),
                        failed.message().unwrap_or("")
                    )
                    .into(),
                });
            }
            if let Some(page) = failed.id().parse::<usize>().ok().and_then(|i| pages.get(i)) {
                again.push(page.clone());
            }
        }
        Ok(again)
    }
}

#[async_trait]
impl PageQueue for SqsPageQueue {
    /// Sends in batches of up to 10 messages and 256 KiB; the entries SQS could not take
    /// are sent again (their order within a group kept: a change's pages are all in
    /// different groups) before this returns.
    async fn enqueue(&self, pages: Vec<QueuedPage>) -> Result<()> {
        for batch in batches(pages) {
            backoff::resend_leftovers("SendMessageBatch", "pages", ATTEMPTS, batch, |pending| {
                self.send_batch(pending)
            })
            .await?;
        }
        Ok(())
    }
}

/// Splits `pages` into batches SQS takes, in order.
fn batches(pages: Vec<QueuedPage>) -> Vec<Vec<QueuedPage>> {
    let mut batches: Vec<Vec<QueuedPage>> = Vec::new();
    let mut bytes = 0;
    for page in pages {
        let size = page.body.len();
        match batches.last_mut() {
            Some(batch) if batch.len() < BATCH_MESSAGES && bytes + size <= BATCH_BYTES => {
                bytes += size;
                batch.push(page);
            }
            _ => {
                bytes = size;
                batches.push(vec![page]);
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(bytes: usize) -> QueuedPage {
        QueuedPage {
            group: "g".into(),
            dedup: "d".into(),
            body: "x".repeat(bytes),
        }
    }

    #[test]
    fn batches_keep_order_and_both_limits() {
        let sizes = [100_000, 100_000, 100_000, 10, 10];
        let split = batches(sizes.iter().map(|&n| page(n)).collect());
        let shape: Vec<Vec<usize>> = split.iter().map(|b| b.iter().map(|p| p.body.len()).collect()).collect();
        assert_eq!(shape, vec![vec![100_000, 100_000], vec![100_000, 10, 10]]);
        assert_eq!(batches((0..25).map(|_| page(1)).collect()).len(), 3);
    }
}
