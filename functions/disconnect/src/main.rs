use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::app::application;
use statecast::application::Services;
use statecast::config::Config;
use statecast::connections_api::ApiGatewaySender;
use statecast::metrics::Metrics;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = Config::from_env()?;
    config.settings.metrics = Metrics::lambda("statecast-disconnect");
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let mut services = Services::on_dynamodb(application()?, aws_sdk_dynamodb::Client::new(&sdk), &config);
    // Presence leaves are posted to the rooms the connection was a member of.
    if let Some(endpoint) = &config.connections_endpoint {
        services = services.with_sender(Arc::new(ApiGatewaySender::on_endpoint(&sdk, endpoint)));
    }
    let service = services.disconnect();
    run(service_fn(|event| statecast_disconnect::handler(&service, event))).await
}
