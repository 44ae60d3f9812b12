//! The delivery engine's part of the SQLite store: claiming due
//! deliveries per target, packs, attempts and what they showed, the
//! breaker's count.

use std::time::Duration;

use async_trait::async_trait;
use chorus_core::{
    AgentName, BreakerTrip, ClaimedDelivery, DeliveryId, NewAttempt, StoreError, Target, TargetKind,
};
use jiff::Timestamp;
use rusqlite::{params, params_from_iter, types::Value};

use crate::{outgoing, writer::backend};

use crate::sqlite::{HEAD, NOT_HELD, READY_AT, SqliteStore, json, ms, not_found, target_kind, ts};

#[async_trait]
impl chorus_core::DeliveryStore for SqliteStore {
    async fn claim_deliveries(
        &self,
        kinds: &[TargetKind],
        skip: &[Target],
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut params: Vec<Value> = kinds.iter().map(|k| Value::Text(k.as_str().to_owned())).collect();
        let kind_marks = vec!["?"; kinds.len()].join(", ");
        let filter = if skip.is_empty() {
            format!("target_kind IN ({kind_marks})")
        } else {
            params.extend(skip.iter().map(|t| Value::Text(json(t))));
            format!("target_kind IN ({kind_marks}) AND target NOT IN ({})", vec!["?"; skip.len()].join(", "))
        };
        // Only the oldest of an ordered target: its worker claims the rest
        // in order (claim_target), so a limit here never cuts a channel's
        // queue between an older retry and the newer ones behind it.
        let filter = format!("{filter} AND {HEAD}");
        self.claim(filter, params, "next_attempt_at, seq", now, lease, limit).await
    }

    async fn claim_target(
        &self,
        target: &Target,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let params = vec![Value::Text(target_kind(target).as_str().to_owned()), Value::Text(json(target))];
        self.claim("target_kind = ? AND target = ?".to_owned(), params, "seq", now, lease, limit).await
    }

    async fn defer_delivery(&self, id: &DeliveryId, until: Timestamp) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn, _| {
            conn.execute(
                // The pack stays: if any send of it might have arrived, only
                // the same pack again carries the nonce that says so.
                "UPDATE deliveries SET next_attempt_at = ?2, lease_until = NULL
                 WHERE id = ?1 AND status = 'pending'",
                params![id.as_str(), ms(until)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn begin_probe(
        &self,
        hook: &chorus_core::HookId,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let hook = hook.clone();
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE outgoing_hooks SET breaker_until = ?4
                 WHERE id = ?1 AND consecutive_failures >= ?2 AND COALESCE(breaker_until, 0) <= ?3",
                params![hook.as_str(), threshold, ms(now), ms(until)],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn mark_packed(&self, ids: &[DeliveryId], pack: &str) -> Result<(), StoreError> {
        let ids: Vec<Value> = ids.iter().map(|id| Value::from(id.as_str().to_owned())).collect();
        let pack = pack.to_owned();
        self.write(move |conn, _| {
            let list = vec!["?"; ids.len()].join(",");
            let sql = format!(
                "UPDATE deliveries SET pack = ?,
                        lease_until = (SELECT MAX(lease_until) FROM deliveries WHERE id IN ({list}))
                 WHERE id IN ({list}) AND status = 'pending'"
            );
            let params = std::iter::once(Value::from(pack.clone()))
                .chain(ids.iter().cloned())
                .chain(ids.iter().cloned());
            conn.execute(&sql, params_from_iter(params)).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn degrade_agent(&self, agent: &AgentName, reason: &str) -> Result<bool, StoreError> {
        let (agent, reason) = (agent.clone(), reason.to_owned());
        self.write_lookups(move |conn, _| {
            conn.execute(
                "UPDATE agents SET degraded_reason = ?2 WHERE name = ?1 AND degraded_reason IS NULL",
                params![agent.as_str(), reason],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn subject_message(&self, target: &Target, subject: &str) -> Result<Option<String>, StoreError> {
        let (target, subject) = (json(target), subject.to_owned());
        self.read(move |conn, _| crate::subjects::find(conn, &target, &subject)).await
    }

    async fn record_attempts(&self, attempts: Vec<NewAttempt>) -> Result<Vec<BreakerTrip>, StoreError> {
        let now = ms(self.now());
        self.write(move |conn, _| {
            let mut trips = Vec::new();
            let mut insert = conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO attempts (delivery_id, number, started_at, duration_ms, status_code,
                                                      error, response_excerpt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?;
            let mut update = conn
                .prepare_cached(
                    // A pack to be retried stays one: its send may have
                    // arrived with the answer lost, and only the same pack
                    // again carries the nonce Discord deduplicates on.
                    "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = NULL,
                                           last_error = ?5, updated_at = ?6,
                                           pack = CASE WHEN ?2 = 'pending' THEN pack END
                     WHERE id = ?1",
                )
                .map_err(backend)?;
            for attempt in &attempts {
                let a = &attempt.attempt;
                insert
                    .execute(params![
                        a.delivery_id.as_str(),
                        a.number,
                        ms(a.started_at),
                        a.duration_ms as i64,
                        a.status_code,
                        a.error,
                        a.response_excerpt,
                    ])
                    .map_err(backend)?;
                let updated = update
                    .execute(params![
                        a.delivery_id.as_str(),
                        attempt.status.as_str(),
                        a.number,
                        ms(attempt.next_attempt_at),
                        a.error,
                        now
                    ])
                    .map_err(backend)?;
                if updated == 0 {
                    return Err(not_found("delivery", &a.delivery_id));
                }
                for shown in &attempt.subject_messages {
                    crate::subjects::keep(conn, &a.delivery_id, shown, now)?;
                }
                if let Some(step) = &attempt.breaker {
                    trips.extend(outgoing::breaker_step(conn, step, now)?);
                }
            }
            Ok(trips)
        })
        .await
    }

    async fn next_due(&self, kinds: &[TargetKind]) -> Result<Option<Timestamp>, StoreError> {
        let kinds: Vec<Value> = kinds.iter().map(|k| Value::Text(k.as_str().to_owned())).collect();
        if kinds.is_empty() {
            return Ok(None);
        }
        self.read(move |conn, _| {
            let marks = vec!["?"; kinds.len()].join(", ");
            let sql = format!(
                "SELECT MIN({READY_AT}) FROM deliveries
                 WHERE status = 'pending' AND target_kind IN ({marks}) AND {NOT_HELD} AND {HEAD}"
            );
            let min: Option<i64> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params_from_iter(kinds.iter()), |r| r.get(0)))
                .map_err(backend)?;
            Ok(min.map(ts))
        })
        .await
    }
}
