use aws_config::BehaviorVersion;
use lambda_runtime::{run, service_fn, Error};
use statecast::app::application;
use statecast::application::Services;
use statecast::config::Config;
use statecast::trigger::TriggerService;
use statecast_trigger::{Deps, QueueNames};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let queues = QueueNames::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let app = application()?;
    let services = Services::on_dynamodb(app.clone(), aws_sdk_dynamodb::Client::new(&sdk), &config);
    // Every trigger's secret is read once, here; a missing one stops the function at init.
    let service = TriggerService::new(&app, &services, |name| std::env::var(name).ok())?;
    let deps = Deps::new(service, queues);
    run(service_fn(|event| statecast_trigger::handler(&deps, event))).await
}
