//! One SQS record as Lambda's event source mapping hands it to a function, for the local
//! queues (queue triggers, fan-out pages).

use serde_json::{json, Value};

/// A received message.
pub struct Received<'a> {
    pub queue: &'a str,
    pub id: &'a str,
    pub body: &'a str,
    pub sent_at: i64,
    pub receive_count: u32,
    /// A FIFO message's group and deduplication ids.
    pub fifo: Option<(&'a str, &'a str)>,
}

/// The record for `message`.
pub fn record(message: &Received<'_>) -> Value {
    let mut attributes = json!({
        "ApproximateReceiveCount": message.receive_count.to_string(),
        "SentTimestamp": message.sent_at.to_string(),
        "SenderId": "000000000000",
        "ApproximateFirstReceiveTimestamp": message.sent_at.to_string(),
    });
    if let Some((group, dedup)) = message.fifo {
        attributes["MessageGroupId"] = json!(group);
        attributes["MessageDeduplicationId"] = json!(dedup);
    }
    json!({
        "messageId": message.id,
        "receiptHandle": format!("{}#{}", message.id, message.receive_count),
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{}", message.queue),
        "awsRegion": "local",
    })
}
