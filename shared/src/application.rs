//! An application — the actor types and workflows (with their actions) a deployment serves —
//! and the services built from it. Every function's `main`, local mode and the test harness
//! build their services here, from one [`Application`] and one set of [`Stores`].

use std::fmt;
use std::sync::Arc;

use crate::actor::{Actor, ActorRegistry};
use crate::config::Config;
use crate::dynamo::DynamoStore;
use crate::ports::{ActorStore, ConnectionSender, ConnectionStore, SubscriptionStore};
use crate::service::{ConnectService, DisconnectService, FanoutService, MessageService, Settings};
use crate::trigger::{Trigger, TriggerError};
use crate::workflow::{
    Action, DefinitionError, WorkflowDefinition, WorkflowRegistry, WorkflowService, WorkflowSettings, WorkflowStore,
};

/// What a deployment serves. Declared once (see [`crate::app::application`]).
#[derive(Clone, Default)]
pub struct Application {
    actors: ActorRegistry,
    workflows: WorkflowRegistry,
    triggers: Vec<Trigger>,
}

impl Application {
    /// An application with no actor types of its own (workflow progress actors are always
    /// there, so clients can follow workflow runs) and no workflows.
    pub fn new() -> Self {
        Self {
            actors: ActorRegistry::new(),
            workflows: WorkflowRegistry::default(),
            triggers: Vec::new(),
        }
    }

    /// Registers an actor type under its [`Actor::actor_type`] name.
    pub fn actor(mut self, actor: impl Actor) -> Self {
        self.actors.register(actor);
        self
    }

    /// Registers a workflow action; register actions before the workflows that use them.
    pub fn action(mut self, name: impl Into<String>, action: impl Action + 'static) -> Self {
        self.workflows = self.workflows.action(name, action);
        self
    }

    /// Validates and registers a workflow; every problem is listed in the error.
    pub fn workflow(mut self, definition: WorkflowDefinition) -> Result<Self, DefinitionError> {
        self.workflows.register(definition)?;
        Ok(self)
    }

    /// Validates and registers a workflow written as JSON.
    pub fn workflow_json(mut self, json: &str) -> Result<Self, DefinitionError> {
        self.workflows.register_json(json)?;
        Ok(self)
    }

    pub fn actors(&self) -> &ActorRegistry {
        &self.actors
    }

    pub fn workflows(&self) -> &WorkflowRegistry {
        &self.workflows
    }

    /// Validates and adds triggers (declare them after the actors and workflows they target);
    /// one error lists every problem of the application's triggers.
    pub fn triggers(mut self, triggers: impl IntoIterator<Item = Trigger>) -> Result<Self, TriggerError> {
        self.triggers.extend(triggers);
        crate::trigger::validate::validate(&self.triggers, &self.actors, &self.workflows)?;
        Ok(self)
    }

    /// The declared triggers.
    pub fn trigger_list(&self) -> &[Trigger] {
        &self.triggers
    }

    /// Guards a registered action with a circuit breaker and/or a rate limit (state shared by
    /// every instance through the store).
    pub fn guard(mut self, action: &str, guard: crate::workflow::ActionGuard) -> Result<Self, DefinitionError> {
        self.workflows.guard(action, guard)?;
        Ok(self)
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("actors", &self.actors)
            .field("workflows", &self.workflows)
            .field("triggers", &self.triggers)
            .finish()
    }
}

/// The ports the services store through. Production and local mode fill every one with the
/// same DynamoDB store ([`Stores::all`]); a test may swap one.
#[derive(Clone)]
pub struct Stores {
    pub connections: Arc<dyn ConnectionStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub actors: Arc<dyn ActorStore>,
    pub workflows: Arc<dyn WorkflowStore>,
}

impl Stores {
    /// Every port served by `store`.
    pub fn all<S>(store: Arc<S>) -> Self
    where
        S: ConnectionStore + SubscriptionStore + ActorStore + WorkflowStore + 'static,
    {
        Self {
            connections: store.clone(),
            subscriptions: store.clone(),
            actors: store.clone(),
            workflows: store,
        }
    }
}

/// The services of one application over one set of stores: what each Lambda handler calls.
#[derive(Clone)]
pub struct Services {
    actors: Arc<ActorRegistry>,
    stores: Stores,
    settings: Settings,
    workflows: Arc<WorkflowService>,
    /// `@connections`: `$default` replies sent in parts, broadcasts and presence changes.
    sender: Option<Arc<dyn ConnectionSender>>,
}

impl Services {
    /// What every Lambda function builds: the services of `app` on the DynamoDB tables and
    /// settings of `config`.
    pub fn on_dynamodb(app: Application, client: aws_sdk_dynamodb::Client, config: &Config) -> Self {
        let store = Arc::new(DynamoStore::new(client, config.tables.clone()));
        Self::new(
            app,
            Stores::all(store),
            config.settings.clone(),
            WorkflowSettings {
                metrics: config.settings.metrics.clone(),
                ..WorkflowSettings::default()
            },
        )
    }

    pub fn new(app: Application, stores: Stores, settings: Settings, workflow_settings: WorkflowSettings) -> Self {
        let workflows = Arc::new(WorkflowService::new(
            stores.workflows.clone(),
            Arc::new(app.workflows),
            workflow_settings,
        ));
        Self {
            actors: Arc::new(app.actors),
            stores,
            settings,
            workflows,
            sender: None,
        }
    }

    /// `$default` and `$disconnect` post through `sender` (`@connections`): replies over the
    /// message limit in parts, broadcasts, and presence joins, updates and leaves.
    pub fn with_sender(mut self, sender: Arc<dyn ConnectionSender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// `$connect`.
    pub fn connect(&self) -> ConnectService {
        ConnectService::new(self.stores.connections.clone(), self.settings.clone())
    }

    /// `$disconnect`, and the clean-up of connections a post found gone.
    pub fn disconnect(&self) -> DisconnectService {
        self.disconnect_posting(self.sender.clone())
    }

    fn disconnect_posting(&self, sender: Option<Arc<dyn ConnectionSender>>) -> DisconnectService {
        DisconnectService::new(
            self.stores.connections.clone(),
            self.stores.subscriptions.clone(),
            sender,
            self.settings.send_concurrency,
        )
        .with_metrics(self.settings.metrics.clone())
    }

    /// `$default`: every client message.
    pub fn message(&self) -> MessageService {
        let service = MessageService::new(
            self.stores.clone(),
            self.actors.clone(),
            self.workflows.clone(),
            self.settings.clone(),
        );
        match &self.sender {
            Some(sender) => service.with_sender(sender.clone()),
            None => service,
        }
    }

    /// The actors stream's fan-out, posting through `sender` (`@connections`).
    pub fn fanout(&self, sender: Arc<dyn ConnectionSender>) -> FanoutService {
        FanoutService::new(
            self.stores.subscriptions.clone(),
            sender.clone(),
            self.disconnect_posting(Some(sender)),
            self.actors.clone(),
            self.settings.clone(),
        )
    }

    /// The workflows stream's engine and the timer sweep.
    pub fn workflow(&self) -> Arc<WorkflowService> {
        self.workflows.clone()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn actors(&self) -> &Arc<ActorRegistry> {
        &self.actors
    }
}
