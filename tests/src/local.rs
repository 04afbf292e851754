//! Local mode for tests: a whole stack on an ephemeral port, with tables of its own (against
//! the external endpoint when [`crate::ENDPOINT_VAR`] is set).

use statecast::dynamo::DynamoStore;
use statecast_local::{LocalOptions, LocalStack};

/// Starts `options` on `127.0.0.1:0` with a unique table prefix.
pub async fn start_local(options: LocalOptions) -> LocalStack {
    crate::init_tracing();
    let options = LocalOptions {
        port: 0,
        dynamodb_endpoint: crate::external_endpoint(),
        table_prefix: crate::unique_prefix(),
        ..options
    };
    LocalStack::start(options).await.expect("local stack starts")
}

/// A store on the stack's tables, to check what it wrote.
pub fn store(stack: &LocalStack) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.tables.clone())
}
