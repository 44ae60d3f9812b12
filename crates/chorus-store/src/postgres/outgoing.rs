//! Outgoing subscriptions and emitted events.

use crate::outgoing::Verdict;
use chorus_core::{
    AgentName, BreakerStep, BreakerTrip, Delivery, DeliveryId, HookId, HookStats, HttpSpec, NewOutgoingEvent,
    OutgoingAuth, OutgoingHook, OutgoingPatch, Secret, StoreError, Target, TargetKind,
};
use deadpool_postgres::GenericClient;
use jiff::{SignedDuration, Timestamp};
use serde_json::json as value;
use tokio_postgres::Row;

use super::{Columns, corrupt, delivery_from_row, json, ms, not_found, pg};
use crate::crypto::MasterKey;

fn context(id: &HookId) -> String {
    format!("outgoing:{id}")
}

fn auth_context(id: &HookId) -> String {
    format!("outgoing-auth:{id}")
}

fn hook_from_row(row: &Row) -> Result<OutgoingHook, StoreError> {
    let method: String = row.col("method")?;
    let signature: String = row.col("signature")?;
    Ok(OutgoingHook {
        id: row.parsed("id")?,
        agent: row.parsed_opt("agent")?,
        name: row.col("name")?,
        url: row.col("url")?,
        events: row.json("events")?,
        method: serde_json::from_value(value!(method)).map_err(|_| corrupt("method"))?,
        headers: row.json("headers")?,
        signature: serde_json::from_value(value!(signature)).map_err(|_| corrupt("signature"))?,
        timeout_ms: row.uint("timeout_ms")?,
        retry: row.json("retry")?,
        rate_limit_per_minute: row.uint_opt("rate_limit_per_minute")?,
        max_concurrency: row.uint("max_concurrency")?,
        enabled: row.col("enabled")?,
        paused: row.col("paused")?,
        consecutive_failures: row.uint("consecutive_failures")?,
        breaker_until: row.time_opt("breaker_until")?,
        disabled_reason: row.col("disabled_reason")?,
        created_at: row.time("created_at")?,
        created_by: row.col("created_by")?,
        updated_at: row.time("updated_at")?,
    })
}

fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(crate) async fn get<C: GenericClient>(c: &C, id: &HookId) -> Result<Option<OutgoingHook>, StoreError> {
    c.query_opt("SELECT * FROM outgoing_hooks WHERE id = $1", &[&id.as_str()])
        .await
        .map_err(pg)?
        .map(|r| hook_from_row(&r))
        .transpose()
}

pub(crate) async fn list<C: GenericClient>(
    c: &C,
    agent: Option<&AgentName>,
) -> Result<Vec<OutgoingHook>, StoreError> {
    c.query(
        "SELECT * FROM outgoing_hooks WHERE $1::text IS NULL OR agent = $1 ORDER BY created_at, id",
        &[&agent.map(AgentName::as_str)],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(hook_from_row)
    .collect()
}

pub(crate) async fn create<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    h: &OutgoingHook,
    secret: &Secret,
    auth: &OutgoingAuth,
) -> Result<(), StoreError> {
    let sealed_auth = key.seal(&Secret::new(json(auth)), &auth_context(&h.id));
    c.execute(
        "INSERT INTO outgoing_hooks (id, agent, name, url, events, method, headers, signature, secret, auth,
             timeout_ms, retry, rate_limit_per_minute, max_concurrency, enabled, paused, consecutive_failures,
             disabled_reason, created_at, created_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, NULL, $17, $18, $17)",
        &[
            &h.id.as_str(),
            &h.agent.as_ref().map(AgentName::as_str),
            &h.name,
            &h.url,
            &json(&h.events),
            &h.method.as_str(),
            &json(&h.headers),
            &enum_text(&h.signature),
            &key.seal(secret, &context(&h.id)),
            &sealed_auth,
            &(h.timeout_ms as i64),
            &json(&h.retry),
            &h.rate_limit_per_minute.map(i64::from),
            &i64::from(h.max_concurrency),
            &h.enabled,
            &h.paused,
            &ms(h.created_at),
            &h.created_by,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn update<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    id: &HookId,
    patch: OutgoingPatch,
    now: Timestamp,
) -> Result<OutgoingHook, StoreError> {
    let mut h = c
        .query_opt("SELECT * FROM outgoing_hooks WHERE id = $1 FOR UPDATE", &[&id.as_str()])
        .await
        .map_err(pg)?
        .map(|r| hook_from_row(&r))
        .transpose()?
        .ok_or_else(|| not_found("webhook", id))?;
    if let Some(v) = patch.name {
        h.name = v;
    }
    if let Some(v) = patch.url {
        h.url = v;
    }
    if let Some(v) = patch.events {
        h.events = v;
    }
    if let Some(v) = patch.method {
        h.method = v;
    }
    if let Some(v) = patch.headers {
        h.headers = v;
    }
    if let Some(v) = patch.timeout_ms {
        h.timeout_ms = v;
    }
    if let Some(v) = patch.retry {
        h.retry = v;
    }
    if let Some(v) = patch.rate_limit_per_minute {
        h.rate_limit_per_minute = v;
    }
    if let Some(v) = patch.max_concurrency {
        h.max_concurrency = v;
    }
    if let Some(v) = patch.paused {
        h.paused = v;
    }
    if let Some(v) = patch.enabled {
        if v && !h.enabled {
            // Re-enabling starts the circuit breaker afresh.
            h.consecutive_failures = 0;
            h.breaker_until = None;
            h.disabled_reason = None;
        }
        h.enabled = v;
    }
    if let Some(v) = patch.disabled_reason {
        h.disabled_reason = v;
    }
    c.execute(
        "UPDATE outgoing_hooks SET name = $2, url = $3, events = $4, method = $5, headers = $6, timeout_ms = $7,
             retry = $8, rate_limit_per_minute = $9, max_concurrency = $10, enabled = $11, paused = $12,
             consecutive_failures = $13, disabled_reason = $14, updated_at = $15, breaker_until = $16,
             failing_since = CASE WHEN $13::bigint = 0 THEN NULL ELSE failing_since END
         WHERE id = $1",
        &[
            &id.as_str(),
            &h.name,
            &h.url,
            &json(&h.events),
            &h.method.as_str(),
            &json(&h.headers),
            &(h.timeout_ms as i64),
            &json(&h.retry),
            &h.rate_limit_per_minute.map(i64::from),
            &i64::from(h.max_concurrency),
            &h.enabled,
            &h.paused,
            &i64::from(h.consecutive_failures),
            &h.disabled_reason,
            &ms(now),
            &h.breaker_until.map(ms),
        ],
    )
    .await
    .map_err(pg)?;
    if let Some(auth) = patch.auth {
        c.execute(
            "UPDATE outgoing_hooks SET auth = $2 WHERE id = $1",
            &[&id.as_str(), &key.seal(&Secret::new(json(&auth)), &auth_context(id))],
        )
        .await
        .map_err(pg)?;
    }
    get(c, id).await?.ok_or_else(|| not_found("webhook", id))
}

pub(crate) async fn delete<C: GenericClient>(c: &C, id: &HookId, now: Timestamp) -> Result<(), StoreError> {
    if c.execute("DELETE FROM outgoing_hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)? == 0 {
        return Err(not_found("webhook", id));
    }
    // Kept for the record, but never sent: the subscription is gone.
    c.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'subscription deleted', updated_at = $2
         WHERE hook_id = $1 AND status = 'pending'",
        &[&id.as_str(), &ms(now)],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// An attempt's step of its subscription's circuit breaker, in the
/// attempt's transaction (see the SQLite store's for the rules).
pub(crate) async fn breaker_step<C: GenericClient>(
    c: &C,
    step: &BreakerStep,
    now: i64,
) -> Result<Option<BreakerTrip>, StoreError> {
    // A success leaves a run of zero alone: no row rewritten per delivery.
    let row = if step.succeeded {
        c.query_opt(
            "UPDATE outgoing_hooks SET consecutive_failures = 0, failing_since = NULL, breaker_until = NULL
             WHERE id = $1 AND consecutive_failures != 0
             RETURNING consecutive_failures, enabled, failing_since",
            &[&step.hook.as_str()],
        )
        .await
    } else {
        c.query_opt(
            "UPDATE outgoing_hooks SET consecutive_failures = consecutive_failures + 1,
                 failing_since = COALESCE(failing_since, $2)
             WHERE id = $1
             RETURNING consecutive_failures, enabled, failing_since",
            &[&step.hook.as_str(), &now],
        )
        .await
    };
    let Some(row) = row.map_err(pg)? else { return Ok(None) };
    let failures: u32 = row.uint("consecutive_failures")?;
    if !row.col::<bool>("enabled")? {
        return Ok(None);
    }
    let since: Option<i64> = row.col("failing_since")?;
    let reason = match crate::outgoing::breaker_verdict(step, failures, since.unwrap_or(now), now) {
        Verdict::Nothing => return Ok(None),
        Verdict::Open(until) => {
            c.execute(
                "UPDATE outgoing_hooks SET breaker_until = $2 WHERE id = $1",
                &[&step.hook.as_str(), &until],
            )
            .await
            .map_err(pg)?;
            return Ok(None);
        }
        Verdict::Disable(reason) => reason,
    };
    c.execute(
        "UPDATE outgoing_hooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3, breaker_until = NULL
         WHERE id = $1",
        &[&step.hook.as_str(), &reason, &now],
    )
    .await
    .map_err(pg)?;
    Ok(Some(BreakerTrip { hook: step.hook.clone(), reason }))
}

pub(crate) async fn http_spec<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    id: &HookId,
    now: Timestamp,
) -> Result<Option<HttpSpec>, StoreError> {
    let Some(row) =
        c.query_opt("SELECT * FROM outgoing_hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)?
    else {
        return Ok(None);
    };
    let hook = hook_from_row(&row)?;
    let secret = key.open(&row.col::<Vec<u8>>("secret")?, &context(id))?;
    let previous: Option<Vec<u8>> = row.col("previous_secret")?;
    let expires: Option<i64> = row.col("previous_expires_at")?;
    let previous_secret = match (previous, expires) {
        (Some(p), Some(exp)) if exp > ms(now) => Some(key.open(&p, &context(id))?),
        _ => None,
    };
    let auth_json = key.open(&row.col::<Vec<u8>>("auth")?, &auth_context(id))?;
    let auth = serde_json::from_str(auth_json.expose()).map_err(|_| StoreError::Unseal)?;
    Ok(Some(HttpSpec { hook, secret, previous_secret, auth }))
}

/// Seal `secret` as the subscription's signing secret, keeping the current
/// one until `grace_until`. `Ok(false)` when there is no such subscription.
pub(crate) async fn rotate<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    id: &HookId,
    secret: &Secret,
    grace_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sealed = key.seal(secret, &context(id));
    let n = c
        .execute(
            "UPDATE outgoing_hooks SET previous_secret = secret, previous_expires_at = $3, secret = $2,
                                       updated_at = $4
             WHERE id = $1",
            &[&id.as_str(), &sealed, &ms(grace_until), &ms(now)],
        )
        .await
        .map_err(pg)?;
    Ok(n > 0)
}

async fn insert_event<C: GenericClient>(c: &C, e: &NewOutgoingEvent) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO outgoing_events (id, event, agent, data, metadata, at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &e.id.as_str(),
            &e.event,
            &e.agent.as_ref().map(AgentName::as_str),
            &json(&e.data),
            &json(&e.metadata),
            &ms(e.at),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

async fn insert_delivery<C: GenericClient>(
    c: &C,
    e: &NewOutgoingEvent,
    hook: &HookId,
) -> Result<DeliveryId, StoreError> {
    let id = DeliveryId::generate();
    let payload = e.wire_payload(hook);
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, hook_id, target_kind, target, payload, status, next_attempt_at,
                                     created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7)",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &stmt,
        &[
            &id.as_str(),
            &e.id.as_str(),
            &hook.as_str(),
            &TargetKind::Http.as_str(),
            &json(&Target::Http { hook_id: hook.clone() }),
            &json(&payload),
            &ms(e.at),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(id)
}

/// Store an outgoing event and a delivery for each subscription that wants it.
pub(crate) async fn emit<C: GenericClient>(
    c: &C,
    e: &NewOutgoingEvent,
) -> Result<Vec<DeliveryId>, StoreError> {
    insert_event(c, e).await?;
    let hooks: Vec<OutgoingHook> = c
        .query("SELECT * FROM outgoing_hooks WHERE enabled", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(hook_from_row)
        .collect::<Result<_, _>>()?;
    let mut ids = Vec::new();
    if hooks.iter().any(|h| h.wants(&e.event, e.agent.as_ref())) {
        super::notify(c, super::DELIVERIES_CHANNEL).await?;
    }
    for h in hooks.iter().filter(|h| h.wants(&e.event, e.agent.as_ref())) {
        ids.push(insert_delivery(c, e, &h.id).await?);
    }
    Ok(ids)
}

pub(crate) async fn emit_to<C: GenericClient>(
    c: &C,
    e: &NewOutgoingEvent,
    hook: &HookId,
) -> Result<DeliveryId, StoreError> {
    get(c, hook).await?.ok_or_else(|| not_found("webhook", hook))?;
    super::notify(c, super::DELIVERIES_CHANNEL).await?;
    insert_event(c, e).await?;
    insert_delivery(c, e, hook).await
}

pub(crate) async fn retry<C: GenericClient>(
    c: &C,
    id: &DeliveryId,
    now: Timestamp,
) -> Result<Delivery, StoreError> {
    let updated = c
        .execute(
            "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = $2,
                 lease_until = NULL, updated_at = $2
             WHERE id = $1 AND status = 'failed'",
            &[&id.as_str(), &ms(now)],
        )
        .await
        .map_err(pg)?;
    let d = c
        .query_opt("SELECT * FROM deliveries WHERE id = $1", &[&id.as_str()])
        .await
        .map_err(pg)?
        .map(|r| delivery_from_row(&r))
        .transpose()?
        .ok_or_else(|| not_found("delivery", id))?;
    if updated > 0 {
        super::notify(c, super::DELIVERIES_CHANNEL).await?;
    }
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}; only failed deliveries can be retried",
            d.status.as_str()
        )));
    }
    Ok(d)
}

pub(crate) async fn recover<C: GenericClient>(
    c: &C,
    hook: &HookId,
    since: Timestamp,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let n = c
        .execute(
            "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = $3,
                 lease_until = NULL, updated_at = $3
             WHERE hook_id = $1 AND status = 'failed' AND created_at >= $2",
            &[&hook.as_str(), &ms(since), &ms(now)],
        )
        .await
        .map_err(pg)?;
    if n > 0 {
        super::notify(c, super::DELIVERIES_CHANNEL).await?;
    }
    Ok(n)
}

pub(crate) async fn stats<C: GenericClient>(
    c: &C,
    hook: &HookId,
    now: Timestamp,
) -> Result<HookStats, StoreError> {
    let day_ago = ms(now - SignedDuration::from_hours(24));
    let rows = c
        .query(
            "SELECT a.started_at, a.duration_ms, a.error IS NULL AS ok FROM attempts a
             JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.hook_id = $1 AND a.started_at >= $2",
            &[&hook.as_str(), &day_ago],
        )
        .await
        .map_err(pg)?;
    let mut figures = Vec::with_capacity(rows.len());
    for row in &rows {
        let attempt: (i64, i64, bool) = (row.col("started_at")?, row.col("duration_ms")?, row.col("ok")?);
        figures.push(crate::outgoing::attempt_figures(attempt));
    }
    let mut stats = HookStats::of_attempts(figures, now);
    let counts = c
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE status = 'pending') AS pending,
                    COUNT(*) FILTER (WHERE status = 'failed') AS failed
             FROM deliveries WHERE hook_id = $1",
            &[&hook.as_str()],
        )
        .await
        .map_err(pg)?;
    stats.pending = counts.uint("pending")?;
    stats.failed = counts.uint("failed")?;
    Ok(stats)
}

pub(crate) async fn purge<C: GenericClient>(c: &C, before: Timestamp) -> Result<u64, StoreError> {
    let before = ms(before);
    let mut removed = 0;
    for sql in [
        "DELETE FROM attempts WHERE delivery_id IN
             (SELECT id FROM deliveries WHERE status != 'pending' AND updated_at < $1)",
        "DELETE FROM deliveries WHERE status != 'pending' AND updated_at < $1",
        "DELETE FROM events WHERE status != 'received' AND received_at < $1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
        "DELETE FROM outgoing_events WHERE at < $1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = outgoing_events.id)",
        "DELETE FROM idempotency WHERE created_at < $1",
    ] {
        removed += c.execute(sql, &[&before]).await.map_err(pg)?;
    }
    Ok(removed)
}
