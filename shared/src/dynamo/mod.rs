//! The DynamoDB adapter: connections, subscriptions, actors and workflows tables behind the
//! store ports.
//!
//! Every access is a key lookup or a Query; nothing here ever scans.

mod actors;
mod commit;
mod connections;
mod guards;
mod item_size;
mod subscriptions;
mod tables;
mod workflow_writes;
mod workflows;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub use item_size::{item_size, MAX_ITEM_BYTES};
pub use subscriptions::shard_of;
pub use tables::{create_tables, TableNames, TableSpec, SUBSCRIPTIONS_BY_CONNECTION, TABLE_SPECS, WORKFLOWS_BY_DUE};

/// One client, four tables; implements every store port.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
    page_size: i32,
}

/// Subscribers read per Query page by default.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Reads subscribers `page_size` at a time (at least 1).
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size.max(1);
        self
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

fn to_item(value: &impl Serialize, what: &'static str) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn from_item<T: DeserializeOwned>(item: Item, what: &'static str) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}
