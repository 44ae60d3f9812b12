//! The router's part of the SQLite store: claiming events, committing
//! each decision with everything it makes, aggregation windows, and the
//! state kept per subject.

use std::time::Duration;

use async_trait::async_trait;
use chorus_core::{Event, HookId, NewDelivery, RoutedEvent, StoreError};
use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, params};

use crate::{tasks, writer::backend};

use crate::sqlite::{
    EVENT_SELECT, SqliteStore, corrupt, encode_deliveries, event_from_row, insert_deliveries,
    insert_encoded_deliveries, json, ms, parse_col, ts,
};

#[async_trait]
impl chorus_core::RoutingStore for SqliteStore {
    async fn claim_events(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (now, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        let mut seqs: Vec<i64> = self
            .write(move |conn, _| {
                conn.prepare_cached(
                    "UPDATE events SET lease_until = ?2
                     WHERE seq IN (SELECT seq FROM events
                                   WHERE status = 'received' AND (lease_until IS NULL OR lease_until <= ?1)
                                   ORDER BY seq LIMIT ?3)
                     RETURNING seq",
                )
                .and_then(|mut s| s.query_map(params![now, until, limit], |r| r.get(0))?.collect())
                .map_err(backend)
            })
            .await?;
        // RETURNING gives no order; routing goes oldest first.
        seqs.sort_unstable();
        // Read on a reader once the lease is committed: copying the bodies
        // out on the single writer held up every commit behind it.
        self.read(move |conn, _| {
            let mut read =
                conn.prepare_cached(concat!(EVENT_SELECT!(), " WHERE e.seq = ?1")).map_err(backend)?;
            // An event purged since its claim is simply not routed.
            let events = seqs
                .into_iter()
                .map(|seq| read.query_row([seq], event_from_row).optional())
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(events.into_iter().flatten().map(|(_, e)| e).collect())
        })
        .await
    }

    async fn route_events(&self, batch: Vec<RoutedEvent>) -> Result<(), StoreError> {
        let now = ms(self.now());
        // The JSON is written here, not on the single writer every ingest
        // waits for.
        let encoded: Vec<_> = batch
            .iter()
            .map(|routed| {
                let outcomes = (!routed.outcomes.is_empty()).then(|| json(&routed.outcomes));
                let states: Vec<String> = routed.subjects.iter().map(|u| json(&u.state)).collect();
                (outcomes, states, encode_deliveries(&routed.deliveries))
            })
            .collect();
        self.write(move |conn, _| {
            for (routed, (outcomes, states, deliveries)) in batch.iter().zip(&encoded) {
                conn.prepare_cached(
                    "UPDATE events SET status = ?2, outcomes = ?3, lease_until = NULL WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![routed.event_id.as_str(), routed.status.as_str(), outcomes])
                })
                .map_err(backend)?;
                for task in &routed.tasks {
                    tasks::insert(conn, task)?;
                }
                for question in &routed.questions {
                    tasks::insert_question(conn, question)?;
                }
                for (update, state) in routed.subjects.iter().zip(states) {
                    tasks::put_subject(conn, update.hook_id.as_str(), &update.subject, state, now)?;
                }
                insert_encoded_deliveries(conn, &routed.deliveries, deliveries, now)?;
                if let Some(slot) = &routed.window {
                    let hook = &slot.hook;
                    let open = |ends_at: Timestamp| -> Result<bool, StoreError> {
                        conn.prepare_cached(
                            "INSERT INTO windows (hook_id, ends_at, closed) VALUES (?1, ?2, 0)
                             ON CONFLICT (hook_id, ends_at) DO NOTHING",
                        )
                        .and_then(|mut st| st.execute(params![hook.as_str(), ms(ends_at)]))
                        .map_err(backend)?;
                        let closed: bool = conn
                            .prepare_cached("SELECT closed FROM windows WHERE hook_id = ?1 AND ends_at = ?2")
                            .and_then(|mut st| {
                                st.query_row(params![hook.as_str(), ms(ends_at)], |r| r.get::<_, i64>(0))
                            })
                            .map_err(backend)?
                            != 0;
                        Ok(!closed)
                    };
                    let ends_at = if open(slot.ends_at)? {
                        slot.ends_at
                    } else {
                        open(slot.if_closed)?;
                        slot.if_closed
                    };
                    let ends_at = &ends_at;
                    conn.prepare_cached(
                        "INSERT INTO window_events (hook_id, ends_at, event_id) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )
                    .and_then(|mut st| {
                        st.execute(params![hook.as_str(), ms(*ends_at), routed.event_id.as_str()])
                    })
                    .map_err(backend)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn due_windows(&self, now: Timestamp) -> Result<Vec<(HookId, Timestamp)>, StoreError> {
        let now = ms(now);
        self.read(move |conn, _| {
            // A window waits for the events received in it that are not
            // routed yet (after a crash, say), so its summary has them all.
            conn.prepare_cached(
                "SELECT hook_id, ends_at FROM windows w WHERE closed = 0 AND ends_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.status = 'received'
                                     AND e.hook_id = w.hook_id AND e.received_at < w.ends_at)
                 ORDER BY ends_at LIMIT 100",
            )
            .and_then(|mut st| {
                st.query_map([now], |r| Ok((parse_col(r, "hook_id")?, ts(r.get("ends_at")?))))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(backend)
        })
        .await
    }

    async fn window_events(&self, hook: &HookId, ends_at: Timestamp) -> Result<Vec<Event>, StoreError> {
        let hook = hook.clone();
        self.read(move |conn, _| {
            conn.prepare_cached(concat!(
                EVENT_SELECT!(),
                " JOIN window_events w ON w.event_id = e.id WHERE w.hook_id = ?1 AND w.ends_at = ?2 ORDER BY e.seq"
            ))
            .and_then(|mut st| {
                st.query_map(params![hook.as_str(), ms(ends_at)], |r| Ok(event_from_row(r)?.1))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(backend)
        })
        .await
    }

    async fn next_window(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn, _| {
            conn.query_row("SELECT MIN(ends_at) FROM windows WHERE closed = 0", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(ts))
            .map_err(backend)
        })
        .await
    }

    async fn close_window(
        &self,
        hook: &HookId,
        ends_at: Timestamp,
        deliveries: Vec<NewDelivery>,
    ) -> Result<bool, StoreError> {
        let hook = hook.clone();
        let now = ms(self.now());
        self.write(move |conn, _| {
            let n = conn
                .execute(
                    "UPDATE windows SET closed = 1 WHERE hook_id = ?1 AND ends_at = ?2 AND closed = 0",
                    params![hook.as_str(), ms(ends_at)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(false);
            }
            conn.execute(
                "DELETE FROM window_events WHERE hook_id = ?1 AND ends_at = ?2",
                params![hook.as_str(), ms(ends_at)],
            )
            .map_err(backend)?;
            insert_deliveries(conn, &deliveries, now)?;
            Ok(true)
        })
        .await
    }

    async fn subject_state(
        &self,
        hook: &HookId,
        subject: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (hook, subject) = (hook.clone(), subject.to_owned());
        self.read(move |conn, _| {
            tasks::subject(conn, hook.as_str(), &subject)?
                .map(|s| serde_json::from_str(&s).map_err(|_| backend(corrupt("subject state"))))
                .transpose()
        })
        .await
    }
}
