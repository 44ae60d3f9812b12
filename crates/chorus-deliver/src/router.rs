use std::{sync::Arc, time::Duration};

use chorus_core::{
    AgentName, Clock, DeliveryId, Event, EventStatus, IncomingHook, Message, NewDelivery, RoutedEvent, Store,
    StoreError, Target,
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a claimed event is reserved for the router that claimed it.
const LEASE: Duration = Duration::from_secs(60);
const BATCH: usize = 64;
/// Upper bound of any idle wait, so leases of crashed routers are noticed.
const IDLE: Duration = Duration::from_secs(5);

/// Turns stored incoming events into deliveries.
pub struct Router {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    delivered: Arc<Notify>,
}

impl Router {
    /// `wake` is notified by ingress after each commit; `delivered` is
    /// notified here after deliveries are committed (the engine waits on it).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        delivered: Arc<Notify>,
    ) -> Self {
        Self { store, clock, wake, delivered }
    }

    /// Route until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // Registered before the claim so a commit between the claim and
            // the wait is not missed.
            let notified = self.wake.notified();
            let routed = match self.route_batch().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "routing failed; will retry");
                    0
                }
            };
            if routed == BATCH {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = notified => {}
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }

    /// Route one batch; returns how many events were claimed.
    pub async fn route_batch(&self) -> Result<usize, StoreError> {
        let events = self.store.claim_events(self.clock.now(), LEASE, BATCH).await?;
        let n = events.len();
        let mut batch = Vec::with_capacity(n);
        for event in &events {
            batch.push(route_event(self.store.as_ref(), &self.clock, event).await?);
        }
        let produced = batch.iter().any(|r| !r.deliveries.is_empty());
        // One transaction for the whole batch: routing keeps up with ingress
        // instead of paying an fsync per event.
        self.store.route_events(batch).await?;
        if produced {
            self.delivered.notify_one();
        }
        Ok(n)
    }
}

/// Decide what one event becomes: filtered, or one delivery per destination.
/// Nothing is written; the caller commits the result.
pub async fn route_event(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
) -> Result<RoutedEvent, StoreError> {
    let hook = store.hook(&event.hook_id).await?;
    let filtered = |status| RoutedEvent { event_id: event.id.clone(), status, deliveries: vec![] };
    if let Some(h) = &hook
        && !h.routes(&event.event_type)
    {
        return Ok(filtered(EventStatus::Filtered));
    }
    let Some(target) = target_for(store, &event.agent).await? else {
        tracing::warn!(event = %event.id, agent = %event.agent, "agent has no channel or Discord webhook; nothing to deliver");
        return Ok(filtered(EventStatus::Routed));
    };
    let message = render(hook.as_ref(), event);
    Ok(RoutedEvent {
        event_id: event.id.clone(),
        status: EventStatus::Routed,
        deliveries: vec![NewDelivery {
            id: DeliveryId::generate(),
            event_id: Some(event.id.clone()),
            hook_id: event.hook_id.clone(),
            target,
            payload: serde_json::to_value(&message).expect("a message serializes"),
            due_at: clock.now(),
        }],
    })
}

async fn target_for(store: &dyn Store, agent: &AgentName) -> Result<Option<Target>, StoreError> {
    let Some(agent) = store.agent(agent).await? else { return Ok(None) };
    Ok(if let Some(channel_id) = agent.channel_id {
        Some(Target::DiscordChannel { channel_id })
    } else if agent.discord_webhook_url.is_some() {
        Some(Target::DiscordWebhook { agent: agent.name })
    } else {
        None
    })
}

fn render(hook: Option<&IncomingHook>, event: &Event) -> Message {
    let parsed: Option<Value> = serde_json::from_slice(&event.body).ok();
    let mut message = match (&parsed, hook.and_then(|h| h.template.as_deref())) {
        (Some(payload), Some(template)) => {
            chorus_format::render_template(template, &event.event_type, payload).unwrap_or_else(|e| {
                // A template that fails at delivery time must not lose the
                // event: fall back to the formatter and say why.
                let mut m = chorus_format::format(event.source, &event.event_type, payload);
                m.description = format!("{}\n\n⚠️ template error: {e}", m.description).trim().to_owned();
                m
            })
        }
        (Some(payload), None) => chorus_format::format(event.source, &event.event_type, payload),
        (None, _) => chorus_format::format_text(event.source, &event.event_type, &event.body),
    };
    let footer = message.footer.take().unwrap_or_default();
    message.footer =
        Some(if footer.is_empty() { event.id.to_string() } else { format!("{footer} · {}", event.id) });
    message.timestamp = Some(event.received_at.to_string());
    message
}
