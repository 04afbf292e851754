//! Table definitions: the one place that names keys, indexes, streams and TTL attributes.
//! Local mode and tests create tables from these; `template.yaml` must declare the same.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use crate::error::{Error, Result};
use crate::sdk_error::dependency;

/// The GSI on the subscriptions table, keyed by `connectionId`, for `$disconnect` cleanup.
pub const SUBSCRIPTIONS_BY_CONNECTION: &str = "byConnection";

/// The sparse GSI on the workflows table listing pending durable timers by due time.
pub const WORKFLOWS_BY_DUE: &str = "byDue";

/// The physical table names, from the environment in Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub connections: String,
    pub subscriptions: String,
    pub actors: String,
    pub workflows: String,
    /// The results of calls made with an idempotency key.
    pub calls: String,
}

impl TableNames {
    /// `{prefix}connections`, `{prefix}subscriptions`, `{prefix}actors`, `{prefix}workflows`,
    /// `{prefix}calls`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            connections: format!("{prefix}connections"),
            subscriptions: format!("{prefix}subscriptions"),
            actors: format!("{prefix}actors"),
            workflows: format!("{prefix}workflows"),
            calls: format!("{prefix}calls"),
        }
    }
}

/// The logical shape of one table.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// Which of [`TableNames`] this is: `connections`, `subscriptions`, `actors`, `workflows`
    /// or `calls`.
    pub role: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    /// (index name, partition key, sort key), projecting the keys and `index_includes`.
    pub index: Option<(&'static str, &'static str, &'static str)>,
    /// Attributes besides the keys the index holds.
    pub index_includes: &'static [&'static str],
    pub ttl_attribute: Option<&'static str>,
    /// Streams with NEW_AND_OLD_IMAGES.
    pub stream: bool,
}

pub const TABLE_SPECS: [TableSpec; 5] = [
    TableSpec {
        role: "connections",
        partition_key: "connectionId",
        sort_key: None,
        index: None,
        index_includes: &[],
        ttl_attribute: Some("expiresAt"),
        stream: false,
    },
    TableSpec {
        role: "subscriptions",
        partition_key: "actorKey",
        sort_key: Some("connectionId"),
        index: Some((SUBSCRIPTIONS_BY_CONNECTION, "connectionId", "actorKey")),
        index_includes: &["member"],
        ttl_attribute: Some("expiresAt"),
        stream: false,
    },
    TableSpec {
        role: "actors",
        partition_key: "actorKey",
        sort_key: None,
        index: None,
        index_includes: &[],
        ttl_attribute: None,
        stream: true,
    },
    TableSpec {
        role: "workflows",
        partition_key: "workflowId",
        sort_key: Some("sk"),
        index: Some((WORKFLOWS_BY_DUE, "timerShard", "dueAt")),
        index_includes: &[],
        ttl_attribute: None,
        stream: true,
    },
    TableSpec {
        role: "calls",
        partition_key: "callKey",
        sort_key: None,
        index: None,
        index_includes: &[],
        ttl_attribute: Some("expiresAt"),
        stream: false,
    },
];

impl TableSpec {
    pub fn name<'a>(&self, names: &'a TableNames) -> &'a str {
        match self.role {
            "connections" => &names.connections,
            "subscriptions" => &names.subscriptions,
            "workflows" => &names.workflows,
            "calls" => &names.calls,
            _ => &names.actors,
        }
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Dependency {
        operation: "CreateTable",
        retryable: false,
        source: Box::new(e),
    }
}

/// Creates every table that does not exist yet (on-demand billing), turning on TTL where the
/// spec has one; tables that exist are left as they are.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<()> {
    for spec in TABLE_SPECS {
        let name = spec.name(names);
        match client.describe_table().table_name(name).send().await {
            Ok(_) => continue,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(dependency("DescribeTable", e)),
        }
        let mut attributes = vec![spec.partition_key];
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(spec.partition_key, KeyType::Hash)?);
        if let Some(sort) = spec.sort_key {
            request = request.key_schema(key(sort, KeyType::Range)?);
            attributes.push(sort);
        }
        if let Some((index, pk, sk)) = spec.index {
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(match spec.index_includes {
                    [] => Projection::builder().projection_type(ProjectionType::KeysOnly).build(),
                    included => Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(included.iter().map(|a| a.to_string()).collect()))
                        .build(),
                })
                .build()
                .map_err(build_error)?;
            request = request.global_secondary_indexes(gsi);
            attributes.extend([pk, sk]);
        }
        attributes.sort_unstable();
        attributes.dedup();
        for attribute in attributes {
            request = request.attribute_definitions(string_attribute(attribute)?);
        }
        if spec.stream {
            let stream = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build_error)?;
            request = request.stream_specification(stream);
        }
        request.send().await.map_err(|e| dependency("CreateTable", e))?;
        if let Some(ttl) = spec.ttl_attribute {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .map_err(build_error)?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| dependency("UpdateTimeToLive", e))?;
        }
    }
    Ok(())
}
