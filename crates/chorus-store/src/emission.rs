//! Outgoing events in the SQLite store: each stored with a delivery per
//! subscription that wants it.

use async_trait::async_trait;
use chorus_core::{DeliveryId, HookId, NewOutgoingEvent, StoreError};

use crate::outgoing;

use crate::sqlite::SqliteStore;

#[async_trait]
impl chorus_core::OutgoingStore for SqliteStore {
    async fn emit(&self, event: NewOutgoingEvent) -> Result<Vec<DeliveryId>, StoreError> {
        self.write(move |conn, _| outgoing::emit(conn, &event)).await
    }

    async fn emit_to(&self, event: NewOutgoingEvent, hook: &HookId) -> Result<DeliveryId, StoreError> {
        let hook = hook.clone();
        self.write(move |conn, _| outgoing::emit_to(conn, &event, &hook)).await
    }
}
