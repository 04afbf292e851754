use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::app::application;
use statecast::application::Services;
use statecast::config::Config;
use statecast::connections_api::ApiGatewaySender;
use statecast::metrics::Metrics;
use statecast::pages_queue::SqsPageQueue;

/// Decoding stream images and diffing states allocate a lot: mimalloc makes the handler
/// faster than the system allocator (`cargo bench -p statecast --bench fanout`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = Config::from_env()?;
    config.settings.metrics = Metrics::lambda("statecast-fanout");
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let sender = ApiGatewaySender::on_endpoint(&sdk, config.require_connections_endpoint()?);
    let services = Services::on_dynamodb(application()?, aws_sdk_dynamodb::Client::new(&sdk), &config);
    let mut service = services.fanout(Arc::new(sender));
    if let Some(url) = &config.pages_queue_url {
        service = service.with_pages(Arc::new(SqsPageQueue::new(aws_sdk_sqs::Client::new(&sdk), url)));
    }
    run(service_fn(|event| statecast_fanout::handler(&service, event))).await
}
