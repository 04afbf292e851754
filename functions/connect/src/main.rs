use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::app::application;
use statecast::application::Services;
use statecast::config::Config;
use statecast::metrics::Metrics;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = Config::from_env()?;
    config.settings.metrics = Metrics::lambda("statecast-connect");
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let services = Services::on_dynamodb(application()?, aws_sdk_dynamodb::Client::new(&sdk), &config);
    let service = services.connect();
    run(service_fn(|event| statecast_connect::handler(&service, event))).await
}
