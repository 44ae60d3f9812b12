//! The management plane's part of the PostgreSQL store.

use async_trait::async_trait;
use chorus_core::{
    Agent, AgentName, AgentPatch, ApiToken, Attempt, AuditEntry, Delivery, DeliveryCounts, DeliveryId,
    DeliveryQuery, DeliveryStatus, Event, EventId, EventQuery, EventStatus, HookId, HookPatch, HookStats,
    IdempotentResponse, IncomingHook, NewAgent, NewApiToken, NewDelivery, NewOutgoingEvent, OutgoingAuth,
    OutgoingHook, OutgoingPatch, Page, ReplyConfig, Rule, Secret, StoreError, Task, TaskQuery, TaskStatus,
};
use jiff::Timestamp;

use super::{
    Columns, EVENT_COLUMNS, PostgresStore, agent_context, agent_from_row, delivery_from_row, event_from_row,
    get_agent, get_hook, hook_context, hook_from_row, hook_reply, insert_deliveries, is_unique_violation,
    json, ms, not_found, outgoing, page, parse_cursor, pg, records, reply_context,
};

#[async_trait]
impl chorus_core::ManagementStore for PostgresStore {
    async fn counts(&self) -> Result<chorus_core::StoreCounts, StoreError> {
        let c = self.client().await?;
        let pairs = async |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
            c.query(sql, &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| Ok((r.col::<String>("status")?, r.uint::<u64>("n")?)))
                .collect()
        };
        let events =
            pairs("SELECT status, COUNT(*) AS n FROM events GROUP BY status ORDER BY status").await?;
        let runs = pairs("SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY status").await?;
        let tasks = pairs("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status ORDER BY status").await?;
        let deliveries = c
            .query(
                "SELECT target_kind, status, COUNT(*) AS n FROM deliveries GROUP BY target_kind, status
                 ORDER BY target_kind, status",
                &[],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| Ok((r.col::<String>("target_kind")?, r.col::<String>("status")?, r.uint::<u64>("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let oldest: Option<i64> = c
            .query_one("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'", &[])
            .await
            .map_err(pg)?
            .get(0);
        let commits =
            self.inner.batcher.commits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Ok(chorus_core::StoreCounts {
            events,
            deliveries,
            oldest_due: oldest.map(super::ts),
            runs,
            tasks,
            commits,
        })
    }

    async fn create_agent(&self, agent: NewAgent) -> Result<Agent, StoreError> {
        self.name_audit_target(agent.name.as_str());
        let now = ms(self.now());
        let sealed =
            agent.discord_webhook_url.as_ref().map(|u| self.key().seal(u, &agent_context(&agent.name)));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let inserted = tx
            .execute(
                "INSERT INTO agents (name, channel_id, discord_webhook_url, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
                &[&agent.name.as_str(), &agent.channel_id, &sealed, &agent.enabled, &now],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("agent {} already exists", agent.name)));
        }
        let made =
            get_agent(&tx, self.key(), &agent.name).await?.ok_or_else(|| not_found("agent", &agent.name))?;
        self.commit_config(tx).await?;
        Ok(made)
    }

    async fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        let caching = self.caching();
        if caching && let Some(agent) = self.inner.lookups.agent(name) {
            return Ok(Some(agent));
        }
        let generation = self.inner.lookups.generation();
        let found = get_agent(&self.client().await?, self.key(), name).await?;
        if caching && let Some(agent) = &found {
            self.inner.lookups.put_agent(generation, agent.clone());
        }
        Ok(found)
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let c = self.client().await?;
        c.query("SELECT * FROM agents ORDER BY name", &[])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| agent_from_row(r, self.key()))
            .collect()
    }

    async fn update_agent(&self, name: &AgentName, patch: AgentPatch) -> Result<Agent, StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let row = tx
            .query_opt("SELECT * FROM agents WHERE name = $1 FOR UPDATE", &[&name.as_str()])
            .await
            .map_err(pg)?
            .ok_or_else(|| not_found("agent", name))?;
        let mut current = agent_from_row(&row, self.key())?;
        if let Some(c) = patch.channel_id {
            current.channel_id = c;
        }
        if let Some(u) = patch.discord_webhook_url {
            current.discord_webhook_url = u;
            // A new URL is the fix a degraded agent waits for.
            current.degraded = None;
        }
        if let Some(e) = patch.enabled {
            current.enabled = e;
        }
        let sealed = current.discord_webhook_url.as_ref().map(|u| self.key().seal(u, &agent_context(name)));
        tx.execute(
            "UPDATE agents SET channel_id = $2, discord_webhook_url = $3, enabled = $4, updated_at = $5,
                               degraded_reason = $6
             WHERE name = $1",
            &[&name.as_str(), &current.channel_id, &sealed, &current.enabled, &now, &current.degraded],
        )
        .await
        .map_err(pg)?;
        let updated = get_agent(&tx, self.key(), name).await?.ok_or_else(|| not_found("agent", name))?;
        self.commit_config(tx).await?;
        Ok(updated)
    }

    async fn delete_agent(&self, name: &AgentName) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if tx.execute("DELETE FROM agents WHERE name = $1", &[&name.as_str()]).await.map_err(pg)? == 0 {
            return Err(not_found("agent", name));
        }
        self.commit_config(tx).await
    }

    async fn create_hook_with_rules(
        &self,
        hook: IncomingHook,
        secret: Option<Secret>,
        rules: Vec<Rule>,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        let sealed = secret.as_ref().map(|s| self.key().seal(s, &hook_context(&hook.id)));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // FOR SHARE: the agent cannot be deleted by another replica between
        // this check and the insert.
        if tx
            .query_opt("SELECT 1 FROM agents WHERE name = $1 FOR SHARE", &[&hook.agent.as_str()])
            .await
            .map_err(pg)?
            .is_none()
        {
            return Err(not_found("agent", &hook.agent));
        }
        tx.execute(
            "INSERT INTO hooks (id, agent, name, source, generic, enabled, rate_limit_per_minute, ip_allowlist,
                                template, events, secret, created_at, created_by, updated_at, slug, aggregate_secs,
                                notify_changes, threads)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12, $14, $15, $16, $17)",
            &[
                &hook.id.as_str(),
                &hook.agent.as_str(),
                &hook.name,
                &hook.source.as_str(),
                &hook.generic.as_ref().map(json),
                &hook.enabled,
                &i64::from(hook.rate_limit_per_minute),
                &json(&hook.ip_allowlist),
                &hook.template,
                &json(&hook.events),
                &sealed,
                &ms(hook.created_at),
                &hook.created_by,
                &hook.slug,
                &hook.aggregate_secs.map(i64::from),
                &hook.notify_changes,
                &hook.threads,
            ],
        )
        .await
        .map_err(|e| match &hook.slug {
            Some(slug) if is_unique_violation(&e) => {
                StoreError::Conflict(format!("webhook_id {slug:?} is taken by another hook"))
            }
            _ => pg(e),
        })?;
        if !rules.is_empty() {
            records::replace_rules(&tx, &hook.id, &rules).await?;
        }
        self.commit_config(tx).await
    }

    async fn hook_by_slug(&self, slug: &str) -> Result<Option<HookId>, StoreError> {
        let c = self.client().await?;
        c.query_opt("SELECT id FROM hooks WHERE slug = $1", &[&slug])
            .await
            .map_err(pg)?
            .map(|r| r.parsed("id"))
            .transpose()
    }

    async fn hook(&self, id: &HookId) -> Result<Option<IncomingHook>, StoreError> {
        get_hook(&self.client().await?, id).await
    }

    async fn rotate_secret(
        &self,
        id: &HookId,
        secret: Secret,
        grace_until: Timestamp,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let incoming = tx
            .query_opt(
                "SELECT secret IS NOT NULL AS signed FROM hooks WHERE id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(pg)?
            .map(|r| r.col::<bool>("signed"))
            .transpose()?;
        match incoming {
            Some(false) => return Err(StoreError::Conflict("this hook was created without a secret".into())),
            Some(true) => {
                let sealed = self.key().seal(&secret, &hook_context(id));
                tx.execute(
                    "UPDATE hooks SET previous_secret = secret, previous_expires_at = $3, secret = $2, updated_at = $4
                     WHERE id = $1",
                    &[&id.as_str(), &sealed, &ms(grace_until), &ms(now)],
                )
                .await
                .map_err(pg)?;
            }
            None if outgoing::rotate(&tx, self.key(), id, &secret, grace_until, now).await? => {}
            None => return Err(not_found("hook", id)),
        }
        self.commit_config(tx).await
    }

    async fn create_token(&self, token: NewApiToken) -> Result<(), StoreError> {
        self.name_audit_target(&token.token.id);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        records::create_token(&tx, &token).await?;
        self.commit(tx).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        records::tokens(&self.client().await?).await
    }

    async fn token_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        records::token_by_hash(&self.client().await?, &hash).await
    }

    async fn revoke_token(&self, id: &str) -> Result<ApiToken, StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let token = records::revoke_token(&tx, id, now).await?;
        self.commit(tx).await?;
        Ok(token)
    }

    async fn rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        records::rules(&self.client().await?, hook).await
    }

    async fn put_rule(&self, command: Rule) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        records::put_rule(&tx, &command).await?;
        self.commit_config(tx).await
    }

    async fn delete_rule(&self, hook: &HookId, id: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        records::delete_rule(&tx, hook, id).await?;
        self.commit_config(tx).await
    }

    async fn replace_rules(&self, hook: &HookId, list: Vec<Rule>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        records::replace_rules(&tx, hook, &list).await?;
        self.commit_config(tx).await
    }

    async fn idempotent(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        records::idempotent(&self.client().await?, self.key(), key).await
    }

    async fn save_idempotent(&self, key: &str, response: IdempotentResponse) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        records::save_idempotent(&tx, self.key(), key, &response).await?;
        self.commit(tx).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        records::record_audit(&self.client().await?, &entry).await
    }

    async fn audit(&self, limit: usize, cursor: Option<String>) -> Result<Page<AuditEntry>, StoreError> {
        records::audit(&self.client().await?, limit.clamp(1, 1000), cursor.as_deref()).await
    }

    async fn hooks(&self, agent: Option<&AgentName>) -> Result<Vec<IncomingHook>, StoreError> {
        let c = self.client().await?;
        c.query(
            "SELECT * FROM hooks WHERE $1::text IS NULL OR agent = $1 ORDER BY created_at, id",
            &[&agent.map(AgentName::as_str)],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(hook_from_row)
        .collect()
    }

    async fn update_hook(&self, id: &HookId, patch: HookPatch) -> Result<IncomingHook, StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let row = tx
            .query_opt("SELECT * FROM hooks WHERE id = $1 FOR UPDATE", &[&id.as_str()])
            .await
            .map_err(pg)?
            .ok_or_else(|| not_found("hook", id))?;
        let mut h = hook_from_row(&row)?;
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
        tx.execute(
            "UPDATE hooks SET name = $2, enabled = $3, rate_limit_per_minute = $4, ip_allowlist = $5,
                              template = $6, events = $7, updated_at = $8, aggregate_secs = $9,
                              notify_changes = $10, threads = $11
             WHERE id = $1",
            &[
                &id.as_str(),
                &h.name,
                &h.enabled,
                &i64::from(h.rate_limit_per_minute),
                &json(&h.ip_allowlist),
                &h.template,
                &json(&h.events),
                &now,
                &h.aggregate_secs.map(i64::from),
                &h.notify_changes,
                &h.threads,
            ],
        )
        .await
        .map_err(pg)?;
        let updated = get_hook(&tx, id).await?.ok_or_else(|| not_found("hook", id))?;
        self.commit_config(tx).await?;
        Ok(updated)
    }

    async fn delete_hook(&self, id: &HookId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if tx.execute("DELETE FROM hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)? == 0 {
            return Err(not_found("hook", id));
        }
        self.commit_config(tx).await
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let c = self.client().await?;
        c.query_opt(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1"), &[&id.as_str()])
            .await
            .map_err(pg)?
            .map(|r| event_from_row(&r).map(|(_, e)| e))
            .transpose()
    }

    async fn events(&self, query: EventQuery) -> Result<Page<Event>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events e
                     WHERE e.seq < $1 AND ($2::text IS NULL OR e.hook_id = $2) AND ($3::text IS NULL OR e.status = $3)
                       AND ($5::text IS NULL OR e.event_type = $5 OR starts_with(e.event_type, $5 || '.'))
                       AND ($6::bigint IS NULL OR e.received_at >= $6) AND ($7::bigint IS NULL OR e.received_at < $7)
                     ORDER BY e.seq DESC LIMIT $4"
                ),
                &[
                    &before,
                    &query.hook_id.as_ref().map(HookId::as_str),
                    &query.status.map(EventStatus::as_str),
                    &(limit as i64 + 1),
                    &query.event_type,
                    &query.since.map(ms),
                    &query.until.map(ms),
                ],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, limit))
    }

    async fn set_reply(&self, id: &HookId, reply: Option<ReplyConfig>) -> Result<(), StoreError> {
        let now = ms(self.now());
        let sealed = reply.map(|r| {
            let plain =
                serde_json::json!({"api_url": r.api_url, "email": r.email, "token": r.token.expose()});
            self.key().seal(&Secret::new(plain.to_string()), &reply_context(id))
        });
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if tx
            .execute(
                "UPDATE hooks SET reply = $2, updated_at = $3 WHERE id = $1",
                &[&id.as_str(), &sealed, &now],
            )
            .await
            .map_err(pg)?
            == 0
        {
            return Err(not_found("hook", id));
        }
        self.commit_config(tx).await
    }

    async fn reply(&self, id: &HookId) -> Result<Option<ReplyConfig>, StoreError> {
        Ok(hook_reply(&self.client().await?, self.key(), id).await?.map(|(_, r)| r))
    }

    async fn question(&self, id: &str) -> Result<Option<chorus_core::Question>, StoreError> {
        records::question(&self.client().await?, id).await
    }

    async fn questions(&self, event: &EventId) -> Result<Vec<chorus_core::Question>, StoreError> {
        records::questions(&self.client().await?, event.as_str()).await
    }

    async fn interact(
        &self,
        deliveries: Vec<NewDelivery>,
        asked: Option<chorus_core::Question>,
        answered: Option<(String, String, Timestamp)>,
    ) -> Result<(), StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if let Some((id, text, at)) = &answered {
            records::answer(&tx, id, text, *at).await?;
        }
        if let Some(q) = &asked {
            records::insert_question(&tx, q).await?;
        }
        insert_deliveries(&tx, &deliveries, now).await?;
        self.commit(tx).await
    }

    async fn tasks(&self, query: TaskQuery) -> Result<Page<Task>, StoreError> {
        records::tasks(&self.client().await?, &query).await
    }

    async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        records::task(&self.client().await?, id).await
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let task =
            records::finish_task(&tx, id, status, result.as_deref(), now, &events, &deliveries).await?;
        self.commit(tx).await?;
        Ok(task)
    }

    async fn update_task(
        &self,
        id: &str,
        title: Option<String>,
        body: Option<String>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let task = records::update_task(&tx, id, title.as_deref(), body.as_deref(), now).await?;
        self.commit(tx).await?;
        Ok(task)
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let c = self.client().await?;
        c.query_opt("SELECT * FROM deliveries WHERE id = $1", &[&id.as_str()])
            .await
            .map_err(pg)?
            .map(|r| delivery_from_row(&r))
            .transpose()
    }

    async fn deliveries(&self, query: DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT * FROM deliveries WHERE seq < $1 AND ($2::text IS NULL OR hook_id = $2)
                   AND ($3::text IS NULL OR event_id = $3) AND ($4::text IS NULL OR status = $4)
                 ORDER BY seq DESC LIMIT $5",
                &[
                    &before,
                    &query.hook_id.as_ref().map(HookId::as_str),
                    &query.event_id.as_ref().map(EventId::as_str),
                    &query.status.map(DeliveryStatus::as_str),
                    &(limit as i64 + 1),
                ],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| Ok((r.col::<i64>("seq")?, delivery_from_row(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(rows, limit))
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let c = self.client().await?;
        c.query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY number", &[&id.as_str()])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| {
                Ok(Attempt {
                    delivery_id: r.parsed("delivery_id")?,
                    number: r.uint("number")?,
                    started_at: r.time("started_at")?,
                    duration_ms: r.uint("duration_ms")?,
                    status_code: r
                        .col::<Option<i32>>("status_code")?
                        .map(|s| u16::try_from(s).map_err(|_| super::corrupt("status_code")))
                        .transpose()?,
                    error: r.col("error")?,
                    response_excerpt: r.col("response_excerpt")?,
                })
            })
            .collect()
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let c = self.client().await?;
        let mut counts = DeliveryCounts::default();
        for r in
            c.query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status", &[]).await.map_err(pg)?
        {
            let n: u64 = r.uint("n")?;
            match DeliveryStatus::parse(&r.col::<String>("status")?) {
                Some(DeliveryStatus::Pending) => counts.pending = n,
                Some(DeliveryStatus::Succeeded) => counts.succeeded = n,
                Some(DeliveryStatus::Failed) => counts.failed = n,
                None => {}
            }
        }
        Ok(counts)
    }

    async fn create_outgoing(
        &self,
        hook: OutgoingHook,
        secret: Secret,
        auth: OutgoingAuth,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        outgoing::create(&tx, self.key(), &hook, &secret, &auth).await?;
        self.commit(tx).await
    }

    async fn outgoing(&self, id: &HookId) -> Result<Option<OutgoingHook>, StoreError> {
        outgoing::get(&self.client().await?, id).await
    }

    async fn outgoing_with_secrets(&self, id: &HookId) -> Result<Option<chorus_core::HttpSpec>, StoreError> {
        outgoing::http_spec(&self.client().await?, self.key(), id, self.now()).await
    }

    async fn outgoing_hooks(&self, agent: Option<&AgentName>) -> Result<Vec<OutgoingHook>, StoreError> {
        outgoing::list(&self.client().await?, agent).await
    }

    async fn update_outgoing(&self, id: &HookId, patch: OutgoingPatch) -> Result<OutgoingHook, StoreError> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let hook = outgoing::update(&tx, self.key(), id, patch, now).await?;
        self.commit(tx).await?;
        Ok(hook)
    }

    async fn delete_outgoing(&self, id: &HookId) -> Result<(), StoreError> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        outgoing::delete(&tx, id, now).await?;
        self.commit(tx).await
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let d = outgoing::retry(&tx, id, now).await?;
        self.commit(tx).await?;
        Ok(d)
    }

    async fn recover(&self, hook: &HookId, since: Timestamp, now: Timestamp) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = outgoing::recover(&tx, hook, since, now).await?;
        self.commit(tx).await?;
        Ok(n)
    }

    async fn hook_stats(&self, hook: &HookId, now: Timestamp) -> Result<HookStats, StoreError> {
        outgoing::stats(&self.client().await?, hook, now).await
    }
}
