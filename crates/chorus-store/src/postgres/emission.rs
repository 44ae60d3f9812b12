//! Outgoing events in the PostgreSQL store: each stored with a delivery
//! per subscription that wants it, in one transaction.

use async_trait::async_trait;
use chorus_core::{DeliveryId, HookId, NewOutgoingEvent, StoreError};

use super::{PostgresStore, outgoing, pg};

#[async_trait]
impl chorus_core::OutgoingStore for PostgresStore {
    async fn emit(&self, event: NewOutgoingEvent) -> Result<Vec<DeliveryId>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let ids = outgoing::emit(&tx, &event).await?;
        self.commit(tx).await?;
        Ok(ids)
    }

    async fn emit_to(&self, event: NewOutgoingEvent, hook: &HookId) -> Result<DeliveryId, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let id = outgoing::emit_to(&tx, &event, hook).await?;
        self.commit(tx).await?;
        Ok(id)
    }
}
