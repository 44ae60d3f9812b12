//! Emitting outgoing events, for the API and for services embedding Chorus.

use std::sync::Arc;

use chorus_core::{
    AgentName, Clock, DeliveryId, EventId, NewOutgoingEvent, Store, StoreError, is_known_event,
};
use serde_json::Value;
use tokio::sync::Notify;

/// Emitting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The event name is not in the catalogue and not under `custom.`.
    #[error("unknown event {0:?}: use a catalogue name or one under custom.")]
    UnknownEvent(String),
    /// `data` or `metadata` is not a JSON object.
    #[error("{0} must be a JSON object")]
    NotAnObject(&'static str),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an emit committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The event's id.
    pub event_id: EventId,
    /// One delivery per subscription that wants it.
    pub deliveries: Vec<DeliveryId>,
}

/// A cheap, cloneable handle that emits events to outgoing subscribers.
///
/// `emit` returns once the event and its deliveries are committed; sending
/// happens in the delivery engine, with retries.
#[derive(Clone)]
pub struct Emitter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl Emitter {
    /// `wake` is the delivery engine's notification.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        Self { store, clock, wake }
    }

    /// The same emitter writing through `store` (an audited handle, say).
    #[must_use]
    pub fn with_store(&self, store: Arc<dyn Store>) -> Self {
        Self { store, clock: self.clock.clone(), wake: self.wake.clone() }
    }

    /// Check and build an event without storing it, for callers that
    /// commit it in their own transaction (a task's completion); call
    /// [`Emitter::wake`] after that commit.
    pub fn prepare(
        &self,
        event: &str,
        agent: Option<AgentName>,
        data: Value,
        metadata: Value,
    ) -> Result<NewOutgoingEvent, EmitError> {
        if !is_known_event(event) {
            return Err(EmitError::UnknownEvent(event.to_owned()));
        }
        if !data.is_object() {
            return Err(EmitError::NotAnObject("data"));
        }
        let metadata = if metadata.is_null() { Value::Object(serde_json::Map::new()) } else { metadata };
        if !metadata.is_object() {
            return Err(EmitError::NotAnObject("metadata"));
        }
        Ok(NewOutgoingEvent {
            id: EventId::generate(),
            event: event.to_owned(),
            agent,
            data,
            metadata,
            at: self.clock.now(),
        })
    }

    /// Emit `event` (about `agent`, if given) to every subscription that wants it.
    pub async fn emit(
        &self,
        event: &str,
        agent: Option<AgentName>,
        data: Value,
        metadata: Value,
    ) -> Result<Emitted, EmitError> {
        let e = self.prepare(event, agent, data, metadata)?;
        let event_id = e.id.clone();
        let deliveries = self.store.emit(e).await?;
        if !deliveries.is_empty() {
            self.wake.notify_one();
        }
        Ok(Emitted { event_id, deliveries })
    }

    /// Wake the delivery engine (after a resume or a manual retry).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Send a sample `webhook.test` event to one subscription.
    pub async fn test(&self, hook: &chorus_core::HookId) -> Result<Emitted, EmitError> {
        let data = serde_json::json!({"message": "Test delivery from Chorus", "hook_id": hook});
        let e = self.prepare("webhook.test", None, data, serde_json::json!({"test": true}))?;
        let event_id = e.id.clone();
        let delivery = self.store.emit_to(e, hook).await?;
        self.wake.notify_one();
        Ok(Emitted { event_id, deliveries: vec![delivery] })
    }
}
