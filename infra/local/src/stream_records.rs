//! Converts DynamoDB Streams API records (aws-sdk-dynamodbstreams) into the records of the
//! Lambda `DynamoDbEvent` (`aws_lambda_events::dynamodb::EventRecord`), as the event source
//! mapping delivers them.

use std::time::SystemTime;

use aws_lambda_events::dynamodb::{EventRecord, StreamRecord, StreamViewType, UserIdentity};
use aws_sdk_dynamodbstreams::primitives::DateTime;
use aws_sdk_dynamodbstreams::types::{self as streams, Identity, Record};

/// `eventSource` of every DynamoDB stream record.
const EVENT_SOURCE: &str = "aws:dynamodb";
/// The identity DynamoDB puts on deletions made by Time To Live.
const TTL_IDENTITY_TYPE: &str = "Service";
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// The Lambda event record for one Streams API record read from `stream_arn`.
pub fn to_event_record(record: Record, stream_arn: &str) -> EventRecord {
    let mut event = EventRecord::default();
    event.event_id = record.event_id.unwrap_or_default();
    event.event_name = record.event_name.map(|n| n.as_str().to_owned()).unwrap_or_default();
    event.event_source = Some(record.event_source.unwrap_or_else(|| EVENT_SOURCE.to_owned()));
    event.event_version = record.event_version;
    event.aws_region = record.aws_region.unwrap_or_default();
    event.event_source_arn = Some(stream_arn.to_owned());
    event.user_identity = record.user_identity.map(user_identity);
    if let Some(change) = record.dynamodb {
        event.change = stream_record(change);
    }
    event
}

fn stream_record(change: streams::StreamRecord) -> StreamRecord {
    let mut out = StreamRecord::default();
    if let Some(created) = change.approximate_creation_date_time.and_then(system_time) {
        out.approximate_creation_date_time = created.into();
    }
    out.keys = change.keys.unwrap_or_default().into();
    out.new_image = change.new_image.unwrap_or_default().into();
    out.old_image = change.old_image.unwrap_or_default().into();
    out.sequence_number = change.sequence_number;
    out.size_bytes = change.size_bytes.unwrap_or_default();
    out.stream_view_type = change.stream_view_type.as_ref().and_then(view_type);
    out
}

fn system_time(time: DateTime) -> Option<SystemTime> {
    SystemTime::try_from(time).ok()
}

fn view_type(view: &streams::StreamViewType) -> Option<StreamViewType> {
    match view {
        streams::StreamViewType::KeysOnly => Some(StreamViewType::KeysOnly),
        streams::StreamViewType::NewImage => Some(StreamViewType::NewImage),
        streams::StreamViewType::OldImage => Some(StreamViewType::OldImage),
        streams::StreamViewType::NewAndOldImages => Some(StreamViewType::NewAndOldImages),
        _ => None,
    }
}

/// Only Time To Live deletions carry an identity. Empty fields get TTL's values: the embedded
/// engine's identity reads back empty through the Streams SDK (DESIGN.md §7).
fn user_identity(identity: Identity) -> UserIdentity {
    let non_empty =
        |value: Option<String>, default: &str| value.filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
    let mut out = UserIdentity::default();
    out.type_ = non_empty(identity.r#type, TTL_IDENTITY_TYPE);
    out.principal_id = non_empty(identity.principal_id, TTL_PRINCIPAL);
    out
}

/// When the record was written, if the stream said so.
pub fn created_at(record: &EventRecord) -> Option<SystemTime> {
    let millis = record.change.approximate_creation_date_time.timestamp_millis();
    let millis = u64::try_from(millis).ok().filter(|m| *m > 0)?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(millis))
}
