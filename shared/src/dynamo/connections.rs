//! The connections table: one item per live connection, keyed by `connectionId`.

use async_trait::async_trait;

use super::{from_item, s, to_item, DynamoStore};
use crate::error::Result;
use crate::ids::ConnectionId;
use crate::ports::ConnectionStore;
use crate::records::ConnectionRecord;
use crate::sdk_error::dependency;

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, connection: &ConnectionRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(to_item(connection, "connection")?))
            .send()
            .await
            .map_err(|e| dependency("PutItem connection", e))?;
        Ok(())
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.connections)
            .key("connectionId", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem connection", e))?;
        output.item.map(|item| from_item(item, "connection")).transpose()
    }

    async fn delete_connection(&self, id: &ConnectionId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.connections)
            .key("connectionId", s(id.as_str()))
            .send()
            .await
            .map_err(|e| dependency("DeleteItem connection", e))?;
        Ok(())
    }
}
