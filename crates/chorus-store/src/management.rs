//! The management plane's part of the SQLite store: agents, hooks and
//! rules, tokens and audit, tasks and questions, subscriptions, and the
//! event and delivery log as the API reads it.

use async_trait::async_trait;
use chorus_core::{
    Agent, AgentName, AgentPatch, ApiToken, Attempt, AuditEntry, Delivery, DeliveryCounts, DeliveryId,
    DeliveryQuery, DeliveryStatus, Event, EventId, EventQuery, EventStatus, HookId, HookPatch, HookStats,
    IdempotentResponse, IncomingHook, NewAgent, NewApiToken, NewDelivery, NewOutgoingEvent, OutgoingAuth,
    OutgoingHook, OutgoingPatch, Page, ReplyConfig, Rule, Secret, StoreError, Task, TaskQuery, TaskStatus,
};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::{access, idempotency, outgoing, rules, tasks, writer::backend};

use crate::sqlite::{
    EVENT_SELECT, SqliteStore, agent_context, agent_from_row, corrupt, delivery_from_row, event_from_row,
    get_agent, get_hook, hook_context, hook_from_row, hook_reply, insert_deliveries, is_unique_violation,
    json, ms, not_found, page, parse_col, parse_cursor, reply_context, ts,
};

#[async_trait]
impl chorus_core::ManagementStore for SqliteStore {
    async fn counts(&self) -> Result<chorus_core::StoreCounts, StoreError> {
        let commits = self.inner.commits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        self.read(move |conn, _| {
            let pairs = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
                conn.prepare_cached(sql)
                    .and_then(|mut s| {
                        s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?.collect()
                    })
                    .map_err(backend)
            };
            let deliveries = conn
                .prepare_cached(
                    "SELECT target_kind, status, COUNT(*) FROM deliveries GROUP BY target_kind, status
                     ORDER BY target_kind, status",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?.collect()
                })
                .map_err(backend)?;
            let oldest: Option<i64> = conn
                .query_row("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'", [], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            Ok(chorus_core::StoreCounts {
                events: pairs("SELECT status, COUNT(*) FROM events GROUP BY status ORDER BY status")?,
                deliveries,
                oldest_due: oldest.map(ts),
                runs: pairs("SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status")?,
                tasks: pairs("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status")?,
                commits,
            })
        })
        .await
    }

    async fn create_agent(&self, agent: NewAgent) -> Result<Agent, StoreError> {
        self.name_audit_target(agent.name.as_str());
        let now = ms(self.now());
        self.write(move |conn, key| {
            let sealed = agent.discord_webhook_url.as_ref().map(|u| key.seal(u, &agent_context(&agent.name)));
            let inserted = conn
                .execute(
                    "INSERT INTO agents (name, channel_id, discord_webhook_url, enabled, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                    params![agent.name.as_str(), agent.channel_id, sealed, agent.enabled, now],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("agent {} already exists", agent.name)));
            }
            get_agent(conn, key, &agent.name)?.ok_or_else(|| not_found("agent", &agent.name))
        })
        .await
    }

    async fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        if let Some(agent) = self.inner.lookups.agent(name) {
            return Ok(Some(agent));
        }
        let generation = self.inner.lookups.generation();
        let name = name.clone();
        let found = self.read(move |conn, key| get_agent(conn, key, &name)).await?;
        if let Some(agent) = &found {
            self.inner.lookups.put_agent(generation, agent.clone());
        }
        Ok(found)
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(|conn, key| {
            let mut stmt = conn.prepare_cached("SELECT * FROM agents ORDER BY name").map_err(backend)?;
            let mut rows = stmt.query([]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                out.push(agent_from_row(row, key)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_agent(&self, name: &AgentName, patch: AgentPatch) -> Result<Agent, StoreError> {
        let name = name.clone();
        let now = ms(self.now());
        self.write_lookups(move |conn, key| {
            let mut current = get_agent(conn, key, &name)?.ok_or_else(|| not_found("agent", &name))?;
            if let Some(c) = patch.channel_id {
                current.channel_id = c;
            }
            if let Some(u) = patch.discord_webhook_url {
                current.discord_webhook_url = u;
                // A new URL is the fix a degraded agent waits for: its
                // messages are claimed again.
                current.degraded = None;
            }
            if let Some(e) = patch.enabled {
                current.enabled = e;
            }
            let sealed = current.discord_webhook_url.as_ref().map(|u| key.seal(u, &agent_context(&name)));
            conn.execute(
                "UPDATE agents SET channel_id = ?2, discord_webhook_url = ?3, enabled = ?4, updated_at = ?5,
                                   degraded_reason = ?6
                 WHERE name = ?1",
                params![name.as_str(), current.channel_id, sealed, current.enabled, now, current.degraded],
            )
            .map_err(backend)?;
            get_agent(conn, key, &name)?.ok_or_else(|| not_found("agent", &name))
        })
        .await
    }

    async fn delete_agent(&self, name: &AgentName) -> Result<(), StoreError> {
        let name = name.clone();
        self.write_lookups(move |conn, _| {
            match conn.execute("DELETE FROM agents WHERE name = ?1", [name.as_str()]).map_err(backend)? {
                0 => Err(not_found("agent", &name)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn create_hook_with_rules(
        &self,
        hook: IncomingHook,
        secret: Option<Secret>,
        rules: Vec<Rule>,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        self.write(move |conn, key| {
            let sealed = secret.as_ref().map(|s| key.seal(s, &hook_context(&hook.id)));
            let exists: bool = conn
                .query_row("SELECT EXISTS(SELECT 1 FROM agents WHERE name = ?1)", [hook.agent.as_str()], |r| r.get(0))
                .map_err(backend)?;
            if !exists {
                return Err(not_found("agent", &hook.agent));
            }
            conn.execute(
                "INSERT INTO hooks (id, agent, name, source, generic, enabled, rate_limit_per_minute, ip_allowlist,
                                    template, events, secret, created_at, created_by, updated_at, slug, aggregate_secs,
                                    notify_changes, threads)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?12, ?14, ?15, ?16, ?17)",
                params![
                    hook.id.as_str(),
                    hook.agent.as_str(),
                    hook.name,
                    hook.source.as_str(),
                    hook.generic.as_ref().map(json),
                    hook.enabled,
                    hook.rate_limit_per_minute,
                    json(&hook.ip_allowlist),
                    hook.template,
                    json(&hook.events),
                    sealed,
                    ms(hook.created_at),
                    hook.created_by,
                    hook.slug,
                    hook.aggregate_secs,
                    hook.notify_changes,
                    hook.threads,
                ],
            )
            .map_err(|e| match &hook.slug {
                Some(slug) if is_unique_violation(&e) => {
                    StoreError::Conflict(format!("webhook_id {slug:?} is taken by another hook"))
                }
                _ => backend(e),
            })?;
            if !rules.is_empty() {
                rules::replace(conn, &hook.id, &rules)?;
            }
            Ok(())
        })
        .await
    }

    async fn hook_by_slug(&self, slug: &str) -> Result<Option<HookId>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn, _| {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM hooks WHERE slug = ?1")
                .and_then(|mut s| s.query_row([&slug], |r| r.get(0)).optional())
                .map_err(backend)?;
            id.map(|i| i.parse().map_err(|_| backend(corrupt("id")))).transpose()
        })
        .await
    }

    async fn hook(&self, id: &HookId) -> Result<Option<IncomingHook>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| get_hook(conn, &id)).await
    }

    async fn rotate_secret(
        &self,
        id: &HookId,
        secret: Secret,
        grace_until: Timestamp,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let now = self.now();
        self.write_lookups(move |conn, key| {
            let incoming: Option<bool> = conn
                .query_row("SELECT secret IS NOT NULL FROM hooks WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            match incoming {
                Some(false) => Err(StoreError::Conflict("this hook was created without a secret".into())),
                Some(true) => {
                    let sealed = key.seal(&secret, &hook_context(&id));
                    conn.execute(
                        "UPDATE hooks SET previous_secret = secret, previous_expires_at = ?3, secret = ?2,
                                          updated_at = ?4
                         WHERE id = ?1",
                        params![id.as_str(), sealed, ms(grace_until), ms(now)],
                    )
                    .map_err(backend)?;
                    Ok(())
                }
                None if outgoing::rotate(conn, key, &id, &secret, grace_until, now)? => Ok(()),
                None => Err(not_found("hook", &id)),
            }
        })
        .await
    }

    async fn create_token(&self, token: NewApiToken) -> Result<(), StoreError> {
        self.name_audit_target(&token.token.id);
        self.write(move |conn, _| access::create(conn, &token)).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|conn, _| access::list(conn)).await
    }

    async fn token_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        self.read(move |conn, _| access::by_hash(conn, &hash)).await
    }

    async fn revoke_token(&self, id: &str) -> Result<ApiToken, StoreError> {
        let (id, now) = (id.to_owned(), ms(self.now()));
        self.write(move |conn, _| access::revoke(conn, &id, now)).await
    }

    async fn rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        let hook = hook.clone();
        self.read(move |conn, _| rules::list(conn, &hook)).await
    }

    async fn put_rule(&self, command: Rule) -> Result<(), StoreError> {
        self.write_lookups(move |conn, _| rules::put(conn, &command)).await
    }

    async fn delete_rule(&self, hook: &HookId, id: &str) -> Result<(), StoreError> {
        let (hook, id) = (hook.clone(), id.to_owned());
        self.write_lookups(move |conn, _| rules::delete(conn, &hook, &id)).await
    }

    async fn replace_rules(&self, hook: &HookId, list: Vec<Rule>) -> Result<(), StoreError> {
        let hook = hook.clone();
        self.write_lookups(move |conn, _| rules::replace(conn, &hook, &list)).await
    }

    async fn idempotent(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn, master| idempotency::idempotent(conn, master, &key)).await
    }

    async fn save_idempotent(&self, key: &str, response: IdempotentResponse) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |conn, master| idempotency::save_idempotent(conn, master, &key, &response)).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |conn, _| access::record(conn, &entry)).await
    }

    async fn audit(&self, limit: usize, cursor: Option<String>) -> Result<Page<AuditEntry>, StoreError> {
        let limit = limit.clamp(1, 1000);
        self.read(move |conn, _| access::query(conn, limit, cursor.as_deref())).await
    }

    async fn hooks(&self, agent: Option<&AgentName>) -> Result<Vec<IncomingHook>, StoreError> {
        let agent = agent.cloned();
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM hooks WHERE ?1 IS NULL OR agent = ?1 ORDER BY created_at, id")
                .map_err(backend)?;
            stmt.query_map([agent.as_ref().map(AgentName::as_str)], hook_from_row)
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn update_hook(&self, id: &HookId, patch: HookPatch) -> Result<IncomingHook, StoreError> {
        let id = id.clone();
        let now = ms(self.now());
        self.write_lookups(move |conn, _| {
            let mut h = get_hook(conn, &id)?.ok_or_else(|| not_found("hook", &id))?;
            if let Some(v) = patch.name {
                h.name = v;
            }
            if let Some(v) = patch.enabled {
                h.enabled = v;
            }
            if let Some(v) = patch.rate_limit_per_minute {
                h.rate_limit_per_minute = v;
            }
            if let Some(v) = patch.ip_allowlist {
                h.ip_allowlist = v;
            }
            if let Some(v) = patch.template {
                h.template = v;
            }
            if let Some(v) = patch.events {
                h.events = v;
            }
            if let Some(v) = patch.aggregate_secs {
                h.aggregate_secs = v;
            }
            if let Some(v) = patch.notify_changes {
                h.notify_changes = v;
            }
            if let Some(v) = patch.threads {
                h.threads = v;
            }
            conn.execute(
                "UPDATE hooks SET name = ?2, enabled = ?3, rate_limit_per_minute = ?4, ip_allowlist = ?5,
                                  template = ?6, events = ?7, updated_at = ?8, aggregate_secs = ?9,
                                  notify_changes = ?10, threads = ?11
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    h.name,
                    h.enabled,
                    h.rate_limit_per_minute,
                    json(&h.ip_allowlist),
                    h.template,
                    json(&h.events),
                    now,
                    h.aggregate_secs,
                    h.notify_changes,
                    h.threads,
                ],
            )
            .map_err(backend)?;
            get_hook(conn, &id)?.ok_or_else(|| not_found("hook", &id))
        })
        .await
    }

    async fn delete_hook(&self, id: &HookId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write_lookups(move |conn, _| {
            match conn.execute("DELETE FROM hooks WHERE id = ?1", [id.as_str()]).map_err(backend)? {
                0 => Err(not_found("hook", &id)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached(concat!(EVENT_SELECT!(), " WHERE e.id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], |r| Ok(event_from_row(r)?.1)).optional())
                .map_err(backend)
        })
        .await
    }

    async fn events(&self, query: EventQuery) -> Result<Page<Event>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    EVENT_SELECT!(),
                    " WHERE e.seq < ?1 AND (?2 IS NULL OR e.hook_id = ?2) AND (?3 IS NULL OR e.status = ?3)
                        AND (?5 IS NULL OR e.event_type = ?5 OR substr(e.event_type, 1, length(?5) + 1) = ?5 || '.')
                        AND (?6 IS NULL OR e.received_at >= ?6) AND (?7 IS NULL OR e.received_at < ?7)
                      ORDER BY e.seq DESC LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        before,
                        query.hook_id.as_ref().map(HookId::as_str),
                        query.status.map(EventStatus::as_str),
                        limit + 1,
                        query.event_type,
                        query.since.map(ms),
                        query.until.map(ms),
                    ],
                    event_from_row,
                )
                .and_then(Iterator::collect)
                .map_err(backend)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn set_reply(&self, id: &HookId, reply: Option<ReplyConfig>) -> Result<(), StoreError> {
        let id = id.clone();
        let now = ms(self.now());
        self.write(move |conn, key| {
            let sealed = reply.map(|r| {
                let plain =
                    serde_json::json!({"api_url": r.api_url, "email": r.email, "token": r.token.expose()});
                key.seal(&Secret::new(plain.to_string()), &reply_context(&id))
            });
            match conn
                .execute(
                    "UPDATE hooks SET reply = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id.as_str(), sealed, now],
                )
                .map_err(backend)?
            {
                0 => Err(not_found("hook", &id)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn reply(&self, id: &HookId) -> Result<Option<ReplyConfig>, StoreError> {
        let id = id.clone();
        self.read(move |conn, key| Ok(hook_reply(conn, key, &id)?.map(|(_, r)| r))).await
    }

    async fn question(&self, id: &str) -> Result<Option<chorus_core::Question>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn, _| tasks::question(conn, &id)).await
    }

    async fn questions(&self, event: &EventId) -> Result<Vec<chorus_core::Question>, StoreError> {
        let event = event.clone();
        self.read(move |conn, _| tasks::questions(conn, event.as_str())).await
    }

    async fn interact(
        &self,
        deliveries: Vec<NewDelivery>,
        asked: Option<chorus_core::Question>,
        answered: Option<(String, String, Timestamp)>,
    ) -> Result<(), StoreError> {
        let now = ms(self.now());
        self.write(move |conn, _| {
            if let Some((id, text, at)) = &answered {
                tasks::answer(conn, id, text, *at)?;
            }
            if let Some(q) = &asked {
                tasks::insert_question(conn, q)?;
            }
            insert_deliveries(conn, &deliveries, now)
        })
        .await
    }

    async fn tasks(&self, query: TaskQuery) -> Result<Page<Task>, StoreError> {
        self.read(move |conn, _| tasks::list(conn, &query)).await
    }

    async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn, _| tasks::get(conn, &id)).await
    }

    async fn finish_task(
        &self,
        id: &str,
        status: TaskStatus,
        result: Option<String>,
        now: Timestamp,
        events: Vec<NewOutgoingEvent>,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Task, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, _| {
            tasks::finish(conn, &id, status, result.as_deref(), now, &events, &deliveries)
        })
        .await
    }

    async fn update_task(
        &self,
        id: &str,
        title: Option<String>,
        body: Option<String>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, _| tasks::update(conn, &id, title.as_deref(), body.as_deref(), now)).await
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached("SELECT * FROM deliveries WHERE id = ?1")
                .and_then(|mut s| s.query_row([id.as_str()], delivery_from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn deliveries(&self, query: DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT * FROM deliveries WHERE seq < ?1 AND (?2 IS NULL OR hook_id = ?2)
                       AND (?3 IS NULL OR event_id = ?3) AND (?4 IS NULL OR status = ?4)
                     ORDER BY seq DESC LIMIT ?5",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        before,
                        query.hook_id.as_ref().map(HookId::as_str),
                        query.event_id.as_ref().map(EventId::as_str),
                        query.status.map(DeliveryStatus::as_str),
                        limit + 1
                    ],
                    |r| Ok((r.get("seq")?, delivery_from_row(r)?)),
                )
                .and_then(Iterator::collect)
                .map_err(backend)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached("SELECT * FROM attempts WHERE delivery_id = ?1 ORDER BY number")
                .and_then(|mut s| {
                    s.query_map([id.as_str()], |r| {
                        Ok(Attempt {
                            delivery_id: parse_col(r, "delivery_id")?,
                            number: r.get("number")?,
                            started_at: ts(r.get("started_at")?),
                            duration_ms: r.get::<_, i64>("duration_ms")? as u64,
                            status_code: r.get("status_code")?,
                            error: r.get("error")?,
                            response_excerpt: r.get("response_excerpt")?,
                        })
                    })?
                    .collect()
                })
                .map_err(backend)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.read(|conn, _| {
            let mut counts = DeliveryCounts::default();
            let mut stmt = conn
                .prepare_cached("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
                .map_err(backend)?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(backend)?;
            for row in rows {
                let (status, n) = row.map_err(backend)?;
                match DeliveryStatus::parse(&status) {
                    Some(DeliveryStatus::Pending) => counts.pending = n as u64,
                    Some(DeliveryStatus::Succeeded) => counts.succeeded = n as u64,
                    Some(DeliveryStatus::Failed) => counts.failed = n as u64,
                    None => {}
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn create_outgoing(
        &self,
        hook: OutgoingHook,
        secret: Secret,
        auth: OutgoingAuth,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        self.write(move |conn, key| outgoing::create(conn, key, &hook, &secret, &auth)).await
    }

    async fn outgoing(&self, id: &HookId) -> Result<Option<OutgoingHook>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| outgoing::get(conn, &id)).await
    }

    async fn outgoing_with_secrets(&self, id: &HookId) -> Result<Option<chorus_core::HttpSpec>, StoreError> {
        let (id, now) = (id.clone(), self.now());
        self.read(move |conn, key| outgoing::http_spec(conn, key, &id, now)).await
    }

    async fn outgoing_hooks(&self, agent: Option<&AgentName>) -> Result<Vec<OutgoingHook>, StoreError> {
        let agent = agent.cloned();
        self.read(move |conn, _| outgoing::list(conn, agent.as_ref())).await
    }

    async fn update_outgoing(&self, id: &HookId, patch: OutgoingPatch) -> Result<OutgoingHook, StoreError> {
        let (id, now) = (id.clone(), self.now());
        self.write(move |conn, key| outgoing::update(conn, key, &id, patch, now)).await
    }

    async fn delete_outgoing(&self, id: &HookId) -> Result<(), StoreError> {
        let (id, now) = (id.clone(), self.now());
        self.write(move |conn, _| outgoing::delete(conn, &id, now)).await
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let id = id.clone();
        self.write(move |conn, _| outgoing::retry(conn, &id, now)).await
    }

    async fn recover(&self, hook: &HookId, since: Timestamp, now: Timestamp) -> Result<u64, StoreError> {
        let hook = hook.clone();
        self.write(move |conn, _| outgoing::recover(conn, &hook, since, now)).await
    }

    async fn hook_stats(&self, hook: &HookId, now: Timestamp) -> Result<HookStats, StoreError> {
        let hook = hook.clone();
        self.read(move |conn, _| outgoing::stats(conn, &hook, now)).await
    }
}
