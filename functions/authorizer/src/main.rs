use lambda_runtime::{run, service_fn, Error};
use statecast_authorizer::{handler, AuthConfig, Authorizer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = AuthConfig::from_env()?;
    let authorizer = Authorizer::new(config)?;
    run(service_fn(|event| handler(&authorizer, event))).await
}
