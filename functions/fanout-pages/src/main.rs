use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::app::application;
use statecast::application::Services;
use statecast::config::Config;
use statecast::connections_api::ApiGatewaySender;
use statecast::metrics::Metrics;

/// As in the fan-out function: frames are built and posted with many small allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = Config::from_env()?;
    config.settings.metrics = Metrics::lambda("statecast-fanout-pages");
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let sender = ApiGatewaySender::on_endpoint(&sdk, config.require_connections_endpoint()?);
    let services = Services::on_dynamodb(application()?, aws_sdk_dynamodb::Client::new(&sdk), &config);
    let service = services.fanout(Arc::new(sender));
    run(service_fn(|event| statecast_fanout_pages::handler(&service, event))).await
}
