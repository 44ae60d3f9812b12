//! The router's part of the PostgreSQL store: claiming events, committing
//! each decision with everything it makes, aggregation windows, and the
//! state kept per subject.

use std::time::Duration;

use async_trait::async_trait;
use chorus_core::{Event, HookId, NewDelivery, RoutedEvent, StoreError};
use jiff::Timestamp;

use super::{
    Columns, DEAD_AFTER_MS, EVENT_COLUMNS, PostgresStore, corrupt, event_from_row, insert_deliveries, json,
    ms, pg, records, ts,
};

/// How long a replica leads routing without claiming again. The router
/// claims at least every few seconds while it lives, so a replica that dies
/// hands routing over after this.
const ROUTER_LEAD: i64 = 20_000;

impl PostgresStore {
    /// Take or keep the lead of routing, in `tx`: one replica routes at a
    /// time, so events are decided in the order they arrived. A replica
    /// taking over from one whose lead ran out frees that one's claims at
    /// once rather than waiting for them to run out, so nothing newer is
    /// decided before them.
    async fn lead_routing(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let me = &self.inner.replica;
        let current = tx
            .query_opt(
                "SELECT holder, until, EXISTS (SELECT 1 FROM replicas r
                                               WHERE r.id = l.holder AND r.seen_at < $1::bigint - $2::bigint) AS gone
                 FROM leader_leases l WHERE role = 'router' FOR UPDATE",
                &[&now, &DEAD_AFTER_MS],
            )
            .await
            .map_err(pg)?;
        if let Some(row) = &current {
            let (holder, until, gone): (String, i64, bool) =
                (row.col("holder")?, row.col("until")?, row.col("gone")?);
            if holder != *me && until > now && !gone {
                return Ok(false);
            }
            if holder != *me {
                tx.execute(
                    "UPDATE events SET lease_until = NULL WHERE status = 'received' AND lease_until IS NOT NULL",
                    &[],
                )
                .await
                .map_err(pg)?;
            }
        }
        tx.execute(
            "INSERT INTO leader_leases (role, holder, until) VALUES ('router', $1, $2)
             ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until",
            &[me, &(now + ROUTER_LEAD)],
        )
        .await
        .map_err(pg)?;
        Ok(true)
    }
}

#[async_trait]
impl chorus_core::RoutingStore for PostgresStore {
    async fn claim_events(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (now, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if !self.lead_routing(&tx, now).await? {
            return Ok(Vec::new());
        }
        let rows = tx
            .query(
                &format!(
                    "WITH claimed AS (
                         UPDATE events SET lease_until = $2
                         WHERE seq IN (SELECT seq FROM events
                                       WHERE status = 'received' AND (lease_until IS NULL OR lease_until <= $1)
                                       ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
                         RETURNING *)
                     SELECT {EVENT_COLUMNS} FROM claimed e ORDER BY e.seq"
                ),
                &[&now, &until, &(limit as i64)],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        rows.iter().map(|r| event_from_row(r).map(|(_, e)| e)).collect()
    }

    async fn route_events(&self, batch: Vec<RoutedEvent>) -> Result<(), StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        for routed in &batch {
            let outcomes = (!routed.outcomes.is_empty()).then(|| json(&routed.outcomes));
            // Decided already (by a router that lost the lead while
            // deciding it): what it made is there; make nothing twice.
            if tx
                .execute(
                    "UPDATE events SET status = $2, outcomes = $3, lease_until = NULL
                     WHERE id = $1 AND status = 'received'",
                    &[&routed.event_id.as_str(), &routed.status.as_str(), &outcomes],
                )
                .await
                .map_err(pg)?
                == 0
            {
                continue;
            }
            for task in &routed.tasks {
                records::insert_task(&tx, task).await?;
            }
            for question in &routed.questions {
                records::insert_question(&tx, question).await?;
            }
            for update in &routed.subjects {
                records::put_subject(
                    &tx,
                    update.hook_id.as_str(),
                    &update.subject,
                    &json(&update.state),
                    now,
                )
                .await?;
            }
            insert_deliveries(&tx, &routed.deliveries, now).await?;
            if let Some(slot) = &routed.window {
                let hook = slot.hook.as_str();
                let mut ends_at = slot.ends_at;
                for candidate in [slot.ends_at, slot.if_closed] {
                    ends_at = candidate;
                    tx.execute(
                        "INSERT INTO windows (hook_id, ends_at, closed) VALUES ($1, $2, FALSE)
                         ON CONFLICT (hook_id, ends_at) DO NOTHING",
                        &[&hook, &ms(candidate)],
                    )
                    .await
                    .map_err(pg)?;
                    // FOR SHARE: a closing window waits for this event to join it.
                    let closed: bool = tx
                        .query_one(
                            "SELECT closed FROM windows WHERE hook_id = $1 AND ends_at = $2 FOR SHARE",
                            &[&hook, &ms(candidate)],
                        )
                        .await
                        .map_err(pg)?
                        .get(0);
                    if !closed {
                        break;
                    }
                }
                tx.execute(
                    "INSERT INTO window_events (hook_id, ends_at, event_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&hook, &ms(ends_at), &routed.event_id.as_str()],
                )
                .await
                .map_err(pg)?;
            }
        }
        self.commit(tx).await
    }

    async fn due_windows(&self, now: Timestamp) -> Result<Vec<(HookId, Timestamp)>, StoreError> {
        let c = self.client().await?;
        // A window waits for the events received in it that are not routed
        // yet (after a crash, say), so its summary has them all.
        c.query(
            "SELECT hook_id, ends_at FROM windows w WHERE NOT closed AND ends_at <= $1
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.status = 'received'
                                 AND e.hook_id = w.hook_id AND e.received_at < w.ends_at)
             ORDER BY ends_at LIMIT 100",
            &[&ms(now)],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| Ok((r.parsed("hook_id")?, r.time("ends_at")?)))
        .collect()
    }

    async fn window_events(&self, hook: &HookId, ends_at: Timestamp) -> Result<Vec<Event>, StoreError> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events e JOIN window_events w ON w.event_id = e.id
                 WHERE w.hook_id = $1 AND w.ends_at = $2 ORDER BY e.seq"
            ),
            &[&hook.as_str(), &ms(ends_at)],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| event_from_row(r).map(|(_, e)| e))
        .collect()
    }

    async fn next_window(&self) -> Result<Option<Timestamp>, StoreError> {
        let c = self.client().await?;
        let min: Option<i64> =
            c.query_one("SELECT MIN(ends_at) FROM windows WHERE NOT closed", &[]).await.map_err(pg)?.get(0);
        Ok(min.map(ts))
    }

    async fn close_window(
        &self,
        hook: &HookId,
        ends_at: Timestamp,
        deliveries: Vec<NewDelivery>,
    ) -> Result<bool, StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Only one replica closes a window: the others see `closed` set.
        let n = tx
            .execute(
                "UPDATE windows SET closed = TRUE WHERE hook_id = $1 AND ends_at = $2 AND NOT closed",
                &[&hook.as_str(), &ms(ends_at)],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM window_events WHERE hook_id = $1 AND ends_at = $2",
            &[&hook.as_str(), &ms(ends_at)],
        )
        .await
        .map_err(pg)?;
        insert_deliveries(&tx, &deliveries, now).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    async fn subject_state(
        &self,
        hook: &HookId,
        subject: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        records::subject(&self.client().await?, hook.as_str(), subject)
            .await?
            .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("subject state")))
            .transpose()
    }
}
