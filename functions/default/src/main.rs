use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::actor::ActorRegistry;
use statecast::config::Config;
use statecast::dynamo::DynamoStore;
use statecast::service::MessageService;
use statecast::workflow::example::example_registry;
use statecast::workflow::{WorkflowService, WorkflowSettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables));
    let registry = Arc::new(ActorRegistry::with_examples());
    // The workflows this deployment can start (the same registry as the workflow function).
    let workflows = Arc::new(WorkflowService::new(
        store.clone(),
        Arc::new(example_registry()),
        WorkflowSettings::default(),
    ));
    let service =
        MessageService::new(store.clone(), store.clone(), store, registry, config.settings).with_workflows(workflows);
    run(service_fn(|event| statecast_default::handler(&service, event))).await
}
