use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::config::Config;
use statecast::dynamo::DynamoStore;
use statecast::service::DisconnectService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables));
    let service = DisconnectService::new(store.clone(), store);
    run(service_fn(|event| statecast_disconnect::handler(&service, event))).await
}
