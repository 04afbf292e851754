use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::config::Config;
use statecast::dynamo::DynamoStore;
use statecast::workflow::example::example_registry;
use statecast::workflow::{WorkflowService, WorkflowSettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables));
    // Register your workflows and actions here (the same registry as the default function).
    let registry = Arc::new(example_registry());
    let service = WorkflowService::new(store, registry, WorkflowSettings::default());
    run(service_fn(|event| statecast_workflow::handler(&service, event))).await
}
