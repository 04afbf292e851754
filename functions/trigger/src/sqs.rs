//! SQS batches in, partial batch failures out. A message's queue is found from its source
//! ARN: `TRIGGER_QUEUES` (`name=arn,…`, set by the template) names the stack's queues; any
//! other ARN's last segment is taken as the name (local mode's queues).

use std::collections::BTreeMap;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use statecast::trigger::QueueMessage;

/// Queue ARNs and the logical names queue triggers declare.
#[derive(Debug, Clone, Default)]
pub struct QueueNames {
    by_arn: BTreeMap<String, String>,
}

/// `TRIGGER_QUEUES` that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("TRIGGER_QUEUES must be `name=arn` pairs separated by commas; {0:?} is not one")]
pub struct QueueNamesError(String);

impl QueueNames {
    /// From `TRIGGER_QUEUES`; unset means no named queues.
    pub fn from_env() -> Result<Self, QueueNamesError> {
        Self::parse(&std::env::var("TRIGGER_QUEUES").unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<Self, QueueNamesError> {
        let mut by_arn = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((name, arn)) if !name.is_empty() && arn.starts_with("arn:") => {
                    by_arn.insert(arn.to_owned(), name.to_owned());
                }
                _ => return Err(QueueNamesError(pair.to_owned())),
            }
        }
        Ok(Self { by_arn })
    }

    /// The logical name of the queue at `arn`.
    pub fn name(&self, arn: &str) -> String {
        match self.by_arn.get(arn) {
            Some(name) => name.clone(),
            None => arn.rsplit(':').next().unwrap_or(arn).to_owned(),
        }
    }
}

/// The batch's messages, each with its queue's logical name and string attributes.
pub fn queue_messages(batch: SqsEvent, queues: &QueueNames) -> Vec<QueueMessage> {
    batch
        .records
        .into_iter()
        .map(|record| QueueMessage {
            message_id: record.message_id.unwrap_or_default(),
            queue: queues.name(record.event_source_arn.as_deref().unwrap_or_default()),
            body: record.body.unwrap_or_default(),
            attributes: record
                .message_attributes
                .into_iter()
                .filter_map(|(name, attribute)| Some((name, attribute.string_value?)))
                .collect(),
        })
        .collect()
}

/// The partial batch response naming the failed messages.
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    statecast::lambda_events::sqs_batch_response(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_come_from_the_map_or_the_arn() {
        let names = QueueNames::parse("todo-inbox=arn:aws:sqs:eu-west-1:1:stack-TodoInbox-X1").expect("parses");
        assert_eq!(names.name("arn:aws:sqs:eu-west-1:1:stack-TodoInbox-X1"), "todo-inbox");
        assert_eq!(names.name("arn:aws:sqs:local:000000000000:other"), "other");
        assert!(QueueNames::parse("oops").is_err());
    }
}
