//! Outgoing subscriptions and emitted events, as synchronous helpers that run
//! on the writer thread or a reader connection.

use chorus_core::{
    AgentName, BreakerStep, BreakerTrip, Delivery, DeliveryId, HookId, HookStats, HttpSpec, NewOutgoingEvent,
    OutgoingAuth, OutgoingHook, OutgoingPatch, Secret, StoreError, Target, TargetKind,
};
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;

use crate::{
    crypto::MasterKey,
    sqlite::{corrupt, delivery_from_row, json, json_col, ms, not_found, parse_col, ts},
    writer::backend,
};

fn context(id: &HookId) -> String {
    format!("outgoing:{id}")
}

fn auth_context(id: &HookId) -> String {
    format!("outgoing-auth:{id}")
}

fn hook_from_row(row: &Row<'_>) -> rusqlite::Result<OutgoingHook> {
    let agent: Option<String> = row.get("agent")?;
    let method: String = row.get("method")?;
    let signature: String = row.get("signature")?;
    Ok(OutgoingHook {
        id: parse_col(row, "id")?,
        agent: agent.map(|a| a.parse()).transpose().map_err(|_| corrupt("agent"))?,
        name: row.get("name")?,
        url: row.get("url")?,
        events: json_col(row, "events")?,
        method: serde_json::from_value(json!(method)).map_err(|_| corrupt("method"))?,
        headers: json_col(row, "headers")?,
        signature: serde_json::from_value(json!(signature)).map_err(|_| corrupt("signature"))?,
        timeout_ms: row.get::<_, i64>("timeout_ms")? as u64,
        retry: json_col(row, "retry")?,
        rate_limit_per_minute: row.get("rate_limit_per_minute")?,
        max_concurrency: row.get("max_concurrency")?,
        enabled: row.get("enabled")?,
        paused: row.get("paused")?,
        consecutive_failures: row.get("consecutive_failures")?,
        breaker_until: row.get::<_, Option<i64>>("breaker_until")?.map(ts),
        disabled_reason: row.get("disabled_reason")?,
        created_at: ts(row.get("created_at")?),
        created_by: row.get("created_by")?,
        updated_at: ts(row.get("updated_at")?),
    })
}

fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(crate) fn get(conn: &Connection, id: &HookId) -> Result<Option<OutgoingHook>, StoreError> {
    conn.prepare_cached("SELECT * FROM outgoing_hooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], hook_from_row).optional())
        .map_err(backend)
}

pub(crate) fn list(conn: &Connection, agent: Option<&AgentName>) -> Result<Vec<OutgoingHook>, StoreError> {
    conn.prepare_cached("SELECT * FROM outgoing_hooks WHERE ?1 IS NULL OR agent = ?1 ORDER BY created_at, id")
        .and_then(|mut s| s.query_map([agent.map(AgentName::as_str)], hook_from_row)?.collect())
        .map_err(backend)
}

pub(crate) fn create(
    conn: &Connection,
    key: &MasterKey,
    h: &OutgoingHook,
    secret: &Secret,
    auth: &OutgoingAuth,
) -> Result<(), StoreError> {
    let sealed_auth = key.seal(&Secret::new(json(auth)), &auth_context(&h.id));
    conn.execute(
        "INSERT INTO outgoing_hooks (id, agent, name, url, events, method, headers, signature, secret, auth,
             timeout_ms, retry, rate_limit_per_minute, max_concurrency, enabled, paused, consecutive_failures,
             disabled_reason, created_at, created_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 0, NULL, ?17, ?18, ?17)",
        params![
            h.id.as_str(),
            h.agent.as_ref().map(AgentName::as_str),
            h.name,
            h.url,
            json(&h.events),
            h.method.as_str(),
            json(&h.headers),
            enum_text(&h.signature),
            key.seal(secret, &context(&h.id)),
            sealed_auth,
            h.timeout_ms as i64,
            json(&h.retry),
            h.rate_limit_per_minute,
            h.max_concurrency,
            h.enabled,
            h.paused,
            ms(h.created_at),
            h.created_by,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn update(
    conn: &Connection,
    key: &MasterKey,
    id: &HookId,
    patch: OutgoingPatch,
    now: Timestamp,
) -> Result<OutgoingHook, StoreError> {
    let mut h = get(conn, id)?.ok_or_else(|| not_found("webhook", id))?;
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
    conn.execute(
        "UPDATE outgoing_hooks SET name = ?2, url = ?3, events = ?4, method = ?5, headers = ?6, timeout_ms = ?7,
             retry = ?8, rate_limit_per_minute = ?9, max_concurrency = ?10, enabled = ?11, paused = ?12,
             consecutive_failures = ?13, disabled_reason = ?14, updated_at = ?15, breaker_until = ?16,
             failing_since = CASE WHEN ?13 = 0 THEN NULL ELSE failing_since END
         WHERE id = ?1",
        params![
            id.as_str(),
            h.name,
            h.url,
            json(&h.events),
            h.method.as_str(),
            json(&h.headers),
            h.timeout_ms as i64,
            json(&h.retry),
            h.rate_limit_per_minute,
            h.max_concurrency,
            h.enabled,
            h.paused,
            h.consecutive_failures,
            h.disabled_reason,
            ms(now),
            h.breaker_until.map(ms),
        ],
    )
    .map_err(backend)?;
    if let Some(auth) = patch.auth {
        conn.execute(
            "UPDATE outgoing_hooks SET auth = ?2 WHERE id = ?1",
            params![id.as_str(), key.seal(&Secret::new(json(&auth)), &auth_context(id))],
        )
        .map_err(backend)?;
    }
    get(conn, id)?.ok_or_else(|| not_found("webhook", id))
}

pub(crate) fn delete(conn: &Connection, id: &HookId, now: Timestamp) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM outgoing_hooks WHERE id = ?1", [id.as_str()]).map_err(backend)? == 0 {
        return Err(not_found("webhook", id));
    }
    // Kept for the record, but never sent: the subscription is gone.
    conn.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'subscription deleted', updated_at = ?2
         WHERE hook_id = ?1 AND status = 'pending'",
        params![id.as_str(), ms(now)],
    )
    .map_err(backend)?;
    Ok(())
}

/// An attempt's step of its subscription's circuit breaker, in the
/// attempt's transaction: a success ends a run of failures; a failure
/// lengthens it, and from the threshold on opens the breaker for a while.
/// A run that has lasted `disable_after` (or a 410) disables the
/// subscription. Answers the trip, if this step disabled it.
pub(crate) fn breaker_step(
    conn: &Connection,
    step: &BreakerStep,
    now: i64,
) -> Result<Option<BreakerTrip>, StoreError> {
    // A success leaves a run of zero alone: rewriting the row on every
    // delivery would cost a page in every group commit.
    let sql = if step.succeeded {
        "UPDATE outgoing_hooks SET consecutive_failures = 0, failing_since = NULL, breaker_until = NULL
         WHERE id = ?1 AND consecutive_failures != 0
         RETURNING consecutive_failures, enabled, failing_since"
    } else {
        "UPDATE outgoing_hooks SET consecutive_failures = consecutive_failures + 1,
             failing_since = COALESCE(failing_since, ?2)
         WHERE id = ?1
         RETURNING consecutive_failures, enabled, failing_since"
    };
    let row: Option<(u32, bool, Option<i64>)> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            let id = step.hook.as_str();
            let params: &[&dyn rusqlite::ToSql] = if step.succeeded { &[&id] } else { &[&id, &now] };
            s.query_row(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
        })
        .map_err(backend)?;
    let Some((failures, true, since)) = row else { return Ok(None) };
    let reason = match breaker_verdict(step, failures, since.unwrap_or(now), now) {
        Verdict::Nothing => return Ok(None),
        Verdict::Open(until) => {
            conn.prepare_cached("UPDATE outgoing_hooks SET breaker_until = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![step.hook.as_str(), until]))
                .map_err(backend)?;
            return Ok(None);
        }
        Verdict::Disable(reason) => reason,
    };
    conn.prepare_cached(
        "UPDATE outgoing_hooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3, breaker_until = NULL
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![step.hook.as_str(), reason, now]))
    .map_err(backend)?;
    Ok(Some(BreakerTrip { hook: step.hook.clone(), reason }))
}

/// What a breaker step decides, the same on every engine.
pub(crate) enum Verdict {
    Nothing,
    /// Open the breaker until this time (ms).
    Open(i64),
    /// Disable the subscription, saying why.
    Disable(String),
}

/// `failures` in a row so far, failing since `since` (ms), at `now` (ms).
pub(crate) fn breaker_verdict(step: &BreakerStep, failures: u32, since: i64, now: i64) -> Verdict {
    if let Some(message) = &step.gone {
        return Verdict::Disable(format!("the destination answered 410 Gone ({message})"));
    }
    if step.succeeded || failures < step.threshold {
        return Verdict::Nothing;
    }
    let failing_for = now.saturating_sub(since);
    if u128::try_from(failing_for).unwrap_or(0) >= step.disable_after.as_millis() {
        return Verdict::Disable(format!("{failures} failed attempts in a row since {}", ts(since)));
    }
    Verdict::Open(now.saturating_add(step.open_for(failures).as_millis() as i64))
}

pub(crate) fn http_spec(
    conn: &Connection,
    key: &MasterKey,
    id: &HookId,
    now: Timestamp,
) -> Result<Option<HttpSpec>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT * FROM outgoing_hooks WHERE id = ?1").map_err(backend)?;
    let mut rows = stmt.query([id.as_str()]).map_err(backend)?;
    let Some(row) = rows.next().map_err(backend)? else { return Ok(None) };
    let hook = hook_from_row(row).map_err(backend)?;
    let secret = key.open(&row.get::<_, Vec<u8>>("secret").map_err(backend)?, &context(id))?;
    let previous: Option<Vec<u8>> = row.get("previous_secret").map_err(backend)?;
    let expires: Option<i64> = row.get("previous_expires_at").map_err(backend)?;
    let previous_secret = match (previous, expires) {
        (Some(p), Some(exp)) if exp > ms(now) => Some(key.open(&p, &context(id))?),
        _ => None,
    };
    let auth_json = key.open(&row.get::<_, Vec<u8>>("auth").map_err(backend)?, &auth_context(id))?;
    let auth = serde_json::from_str(auth_json.expose()).map_err(|_| StoreError::Unseal)?;
    Ok(Some(HttpSpec { hook, secret, previous_secret, auth }))
}

/// Seal `secret` as the subscription's signing secret, keeping the current
/// one until `grace_until`. `Ok(false)` when there is no such subscription.
pub(crate) fn rotate(
    conn: &Connection,
    key: &MasterKey,
    id: &HookId,
    secret: &Secret,
    grace_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sealed = key.seal(secret, &context(id));
    let n = conn
        .execute(
            "UPDATE outgoing_hooks SET previous_secret = secret, previous_expires_at = ?3, secret = ?2,
                                       updated_at = ?4
             WHERE id = ?1",
            params![id.as_str(), sealed, ms(grace_until), ms(now)],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

fn insert_event(conn: &Connection, e: &NewOutgoingEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outgoing_events (id, event, agent, data, metadata, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.id.as_str(),
            e.event,
            e.agent.as_ref().map(AgentName::as_str),
            json(&e.data),
            json(&e.metadata),
            ms(e.at),
        ])
    })
    .map_err(backend)?;
    Ok(())
}

fn insert_delivery(conn: &Connection, e: &NewOutgoingEvent, hook: &HookId) -> Result<DeliveryId, StoreError> {
    let id = DeliveryId::generate();
    let payload = e.wire_payload(hook);
    conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, hook_id, target_kind, target, payload, status, next_attempt_at,
                                 created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.as_str(),
            e.id.as_str(),
            hook.as_str(),
            TargetKind::Http.as_str(),
            json(&Target::Http { hook_id: hook.clone() }),
            json(&payload),
            ms(e.at),
        ])
    })
    .map_err(backend)?;
    Ok(id)
}

pub(crate) fn emit(conn: &Connection, e: &NewOutgoingEvent) -> Result<Vec<DeliveryId>, StoreError> {
    insert_event(conn, e)?;
    let hooks: Vec<OutgoingHook> = conn
        .prepare_cached("SELECT * FROM outgoing_hooks WHERE enabled = 1")
        .and_then(|mut s| s.query_map([], hook_from_row)?.collect())
        .map_err(backend)?;
    hooks
        .iter()
        .filter(|h| h.wants(&e.event, e.agent.as_ref()))
        .map(|h| insert_delivery(conn, e, &h.id))
        .collect()
}

pub(crate) fn emit_to(
    conn: &Connection,
    e: &NewOutgoingEvent,
    hook: &HookId,
) -> Result<DeliveryId, StoreError> {
    get(conn, hook)?.ok_or_else(|| not_found("webhook", hook))?;
    insert_event(conn, e)?;
    insert_delivery(conn, e, hook)
}

pub(crate) fn retry(conn: &Connection, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
    let updated = conn
        .execute(
            "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = ?2,
                 lease_until = NULL, updated_at = ?2
             WHERE id = ?1 AND status = 'failed'",
            params![id.as_str(), ms(now)],
        )
        .map_err(backend)?;
    let d = conn
        .prepare_cached("SELECT * FROM deliveries WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], delivery_from_row).optional())
        .map_err(backend)?
        .ok_or_else(|| not_found("delivery", id))?;
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}; only failed deliveries can be retried",
            d.status.as_str()
        )));
    }
    Ok(d)
}

pub(crate) fn recover(
    conn: &Connection,
    hook: &HookId,
    since: Timestamp,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let n = conn
        .execute(
            "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = ?3,
                 lease_until = NULL, updated_at = ?3
             WHERE hook_id = ?1 AND status = 'failed' AND created_at >= ?2",
            params![hook.as_str(), ms(since), ms(now)],
        )
        .map_err(backend)?;
    Ok(n as u64)
}

/// An attempt row's `(started_at ms, duration ms, succeeded)` as
/// [`HookStats::of_attempts`] reads it.
pub(crate) fn attempt_figures((at, duration, ok): (i64, i64, bool)) -> (Timestamp, u64, bool) {
    (Timestamp::from_millisecond(at).unwrap_or_default(), u64::try_from(duration).unwrap_or(0), ok)
}

pub(crate) fn stats(conn: &Connection, hook: &HookId, now: Timestamp) -> Result<HookStats, StoreError> {
    let day_ago = ms(now - SignedDuration::from_hours(24));
    let rows: Vec<(i64, i64, bool)> = conn
        .prepare_cached(
            "SELECT a.started_at, a.duration_ms, a.error IS NULL FROM attempts a
             JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.hook_id = ?1 AND a.started_at >= ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![hook.as_str(), day_ago], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })
        .map_err(backend)?;
    let mut stats = HookStats::of_attempts(rows.into_iter().map(attempt_figures), now);
    let count = |status: &str| -> Result<u64, StoreError> {
        conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE hook_id = ?1 AND status = ?2",
            params![hook.as_str(), status],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(backend)
    };
    stats.pending = count("pending")?;
    stats.failed = count("failed")?;
    Ok(stats)
}

pub(crate) fn purge(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let before = ms(before);
    let mut removed = 0;
    for sql in [
        "DELETE FROM attempts WHERE delivery_id IN
             (SELECT id FROM deliveries WHERE status != 'pending' AND updated_at < ?1)",
        "DELETE FROM deliveries WHERE status != 'pending' AND updated_at < ?1",
        "DELETE FROM events WHERE status != 'received' AND received_at < ?1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
        "DELETE FROM outgoing_events WHERE at < ?1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = outgoing_events.id)",
        "DELETE FROM idempotency WHERE created_at < ?1",
    ] {
        removed += conn.execute(sql, [before]).map_err(backend)? as u64;
    }
    Ok(removed)
}
