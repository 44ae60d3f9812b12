//! Live pages: `GET /dashboard/live?hook=ID` (a hook's events) or
//! `?topic=runs|subscriptions|tasks` sends a server-sent `refresh` event
//! whenever what that page lists changes; the page's script then fetches
//! the fresh part. The store is looked at once a second, so changes made
//! by every replica show, with nothing to wire between them.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    response::{
        Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use chorus_core::{HookId, RunQuery, TaskQuery};
use serde::Deserialize;

use super::{Session, error_page, pages::find_hook};
use crate::{error::ApiError, state::AppState};

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    hook: Option<String>,
    topic: Option<String>,
}

/// What a live page lists.
#[derive(Clone)]
enum Topic {
    Hook(HookId),
    Runs,
    Subscriptions,
    Tasks,
}

impl Topic {
    async fn of(state: &AppState, q: &LiveQuery) -> Result<Self, ApiError> {
        match (q.hook.as_deref(), q.topic.as_deref()) {
            (Some(id), None) => Ok(Self::Hook(find_hook(state, id).await?.id)),
            (None, Some("runs")) => Ok(Self::Runs),
            (None, Some("subscriptions")) => Ok(Self::Subscriptions),
            (None, Some("tasks")) => Ok(Self::Tasks),
            _ => Err(ApiError::bad_request("live takes hook=<id> or topic=runs|subscriptions|tasks")),
        }
    }

    /// What the page shows, in brief: it differs whenever the page would.
    async fn fingerprint(&self, state: &AppState) -> Option<String> {
        let brief = match self {
            Self::Hook(hook) => {
                let events = super::pages::latest_events(state, hook).await.ok()?;
                events.iter().map(|e| format!("{}:{}", e.id, e.status.as_str())).collect::<Vec<_>>()
            }
            Self::Runs => {
                let sys = state.workflows.as_ref()?;
                let query = RunQuery { workflow: None, status: None, limit: 50, cursor: None };
                let page = sys.store.runs(query).await.ok()?;
                page.items
                    .iter()
                    .map(|r| format!("{}:{}:{}", r.id, r.status.as_str(), r.approvals.len()))
                    .collect()
            }
            Self::Subscriptions => {
                let counts = state.store.delivery_counts().await.ok()?;
                let mut brief = vec![format!("{}/{}/{}", counts.pending, counts.succeeded, counts.failed)];
                for h in state.store.outgoing_hooks(None).await.ok()? {
                    brief.push(format!("{}:{}:{}:{}", h.id, h.enabled, h.paused, h.consecutive_failures));
                }
                brief
            }
            Self::Tasks => {
                let query = TaskQuery { agent: None, status: None, limit: 100, cursor: None };
                let page = state.store.tasks(query).await.ok()?;
                page.items.iter().map(|t| format!("{}:{}", t.id, t.status.as_str())).collect()
            }
        };
        Some(brief.join(","))
    }
}

pub(super) async fn stream(
    _session: Session,
    State(state): State<AppState>,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, Response> {
    let topic = Topic::of(&state, &q).await.map_err(|e| error_page(&e))?;
    let first = topic.fingerprint(&state).await;
    let events = futures_util::stream::unfold((state, topic, first), |(state, topic, last)| async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = topic.fingerprint(&state).await;
            if now != last {
                return Some((Ok(SseEvent::default().event("refresh").data("changed")), (state, topic, now)));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
