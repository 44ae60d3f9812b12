//! The delivery engine's part of the PostgreSQL store: claiming due
//! deliveries per target, packs, attempts and what they showed, the
//! breaker's count.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use chorus_core::{
    AgentName, BreakerTrip, ClaimedDelivery, DeliveryId, HookId, HttpSpec, NewAttempt, StoreError, Target,
    TargetKind,
};
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use tokio_postgres::types::ToSql;

use crate::sqlite::{BREAKER_CLOSED, HEAD, IN_TURN};

use super::{
    Columns, DEAD_AFTER_MS, LEASE_FREE, NOT_HELD, PostgresStore, READY_AT, delivery_from_row, get_agent,
    hook_reply, hook_secret, ms, not_found, outgoing, pg, target_text, ts,
};

/// A key for `pg_advisory_xact_lock`: claims of ordered deliveries run one
/// at a time across replicas, so no two replicas ever both see an ordered
/// target as free.
const ORDERED_CLAIM_LOCK: i64 = 0x0063_686f_7275_7301;

impl PostgresStore {
    /// Lease due deliveries matching `filter` (SQL over `deliveries`, its
    /// parameters from `$4`) and resolve what sending them needs.
    ///
    /// A delivery to an ordered target (a Discord channel or webhook) is
    /// claimed only with the target itself: a row of `target_leases` this
    /// replica holds until the deliveries' lease ends. Another replica's
    /// hold leaves that target's deliveries where they are, so one replica
    /// at a time sends to a channel, in order. `order` is the SQL order the
    /// candidates are taken in; `ordered`, whether ordered targets may be
    /// among them.
    async fn claim(
        &self,
        filter: &str,
        params: &[&(dyn ToSql + Sync)],
        (order, ordered): (&str, bool),
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let (now_ms, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        let limit = limit as i64;
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&now_ms, &limit];
        all.extend_from_slice(params);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if ordered {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ORDERED_CLAIM_LOCK]).await.map_err(pg)?;
        }
        // The same conditions as SQLite's, at the claim's time ($1).
        let (in_turn, breaker_closed) = (IN_TURN.replace("NOW", "$1"), BREAKER_CLOSED.replace("NOW", "$1"));
        // SKIP LOCKED: replicas claiming at once take different deliveries.
        let candidates = tx
            .query(
                &format!(
                    "SELECT seq, target_kind, target FROM deliveries
                     WHERE status = 'pending' AND {filter}
                       AND next_attempt_at <= $1
                       AND {LEASE_FREE}
                       AND {NOT_HELD}
                       AND {in_turn}
                       AND {breaker_closed}
                     ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED"
                ),
                &all,
            )
            .await
            .map_err(pg)?;
        let mut wanted: Vec<String> = Vec::new();
        for row in &candidates {
            let kind: String = row.col("target_kind")?;
            let target: String = row.col("target")?;
            if is_ordered(&kind) && !wanted.contains(&target) {
                wanted.push(target);
            }
        }
        let held: Vec<String> = if wanted.is_empty() {
            Vec::new()
        } else {
            tx.query(
                "INSERT INTO target_leases (target, holder, until)
                 SELECT t, $1, $2 FROM unnest($3::text[]) AS t
                 ON CONFLICT (target) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE target_leases.holder = excluded.holder OR target_leases.until <= $4
                    OR target_leases.holder IN (SELECT id FROM replicas WHERE seen_at < $4::bigint - $5::bigint)
                 RETURNING target",
                &[&self.inner.replica, &until, &wanted, &now_ms, &DEAD_AFTER_MS],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect()
        };
        let mut seqs: Vec<i64> = Vec::with_capacity(candidates.len());
        for row in &candidates {
            let kind: String = row.col("target_kind")?;
            if !is_ordered(&kind) || held.contains(&row.col::<String>("target")?) {
                seqs.push(row.col("seq")?);
            }
        }
        let rows = tx
            .query(
                "UPDATE deliveries SET lease_until = $2, lease_holder = $3 WHERE seq = ANY($1)
                 RETURNING *",
                &[&seqs, &until, &self.inner.replica],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        self.resolve(&client, &rows, now).await
    }

    /// What sending each leased delivery needs: the agent's webhook URL, the
    /// hook's secret or reply credentials, the subscription's request.
    async fn resolve(
        &self,
        client: &deadpool_postgres::Client,
        rows: &[tokio_postgres::Row],
        now: Timestamp,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut rows: Vec<_> =
            rows.iter().map(|r| Ok((r.col::<i64>("seq")?, r))).collect::<Result<Vec<_>, StoreError>>()?;
        // In the order they were made: an ordered target's worker sends its
        // queue as it comes.
        rows.sort_by_key(|(seq, _)| *seq);
        // A batch mostly goes to a few subscriptions: open each one's sealed
        // secret and auth once, not once per delivery.
        let mut specs: HashMap<HookId, Option<HttpSpec>> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for (_, row) in rows {
            let delivery = delivery_from_row(row)?;
            let pack: Option<String> = row.col("pack")?;
            let mut signing_secret = None;
            let mut reply = None;
            let mut webhook_url = None;
            let mut http = None;
            match &delivery.target {
                Target::DiscordWebhook { agent } => {
                    webhook_url =
                        get_agent(client, self.key(), agent).await?.and_then(|a| a.discord_webhook_url);
                }
                Target::DiscordChannel { .. } => {}
                Target::Forward { hook_id } => {
                    signing_secret = hook_secret(client, self.key(), hook_id).await?;
                }
                Target::Reply { hook_id } => reply = hook_reply(client, self.key(), hook_id).await?,
                Target::Http { hook_id } => {
                    http = match specs.get(hook_id) {
                        Some(spec) => spec.clone(),
                        None => {
                            let spec = outgoing::http_spec(client, self.key(), hook_id, now).await?;
                            specs.insert(hook_id.clone(), spec.clone());
                            spec
                        }
                    };
                }
            }
            out.push(ClaimedDelivery {
                delivery,
                webhook_url,
                http,
                signing_secret,
                reply,
                pack,
                edit: None,
                thread: None,
            });
        }
        Ok(out)
    }
}

fn is_ordered(kind: &str) -> bool {
    [TargetKind::DiscordChannel, TargetKind::DiscordWebhook]
        .iter()
        .any(|k| k.is_ordered() && k.as_str() == kind)
}

/// Keep the message showing `shown`'s subject at the delivery's target.
async fn keep_subject<C: GenericClient>(
    c: &C,
    delivery: &DeliveryId,
    shown: &chorus_core::SubjectMessage,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO subject_messages (target, subject, message_id, updated_at)
         SELECT target, $2, $3, $4 FROM deliveries WHERE id = $1
         ON CONFLICT (target, subject) DO UPDATE SET message_id = excluded.message_id,
                                                     updated_at = excluded.updated_at",
        &[&delivery.as_str(), &shown.subject, &shown.message_id, &now],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Forget subjects nothing was said about since `before`.
pub(crate) async fn purge_subjects<C: GenericClient>(c: &C, before: Timestamp) -> Result<u64, StoreError> {
    c.execute("DELETE FROM subject_messages WHERE updated_at < $1", &[&ms(before)]).await.map_err(pg)
}

#[async_trait]
impl chorus_core::DeliveryStore for PostgresStore {
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
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let skip: Vec<String> = skip.iter().map(target_text).collect();
        let ordered = kinds.iter().any(|k| is_ordered(k));
        // Only the oldest of an ordered target: its worker claims the rest
        // in order (claim_target), so a limit here never cuts a channel's
        // queue between an older retry and the newer ones behind it.
        let filter = format!("target_kind = ANY($3) AND target <> ALL($4) AND {HEAD}");
        self.claim(&filter, &[&kinds, &skip], ("next_attempt_at, seq", ordered), now, lease, limit).await
    }

    async fn claim_target(
        &self,
        target: &Target,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let (kind, text) = (target.kind().as_str(), target_text(target));
        let ordered = target.kind().is_ordered();
        self.claim("target_kind = $3 AND target = $4", &[&kind, &text], ("seq", ordered), now, lease, limit)
            .await
    }

    async fn defer_delivery(&self, id: &DeliveryId, until: Timestamp) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            // The pack stays: if any send of it might have arrived, only the
            // same pack again carries the nonce that says so.
            "UPDATE deliveries SET next_attempt_at = $2, lease_until = NULL
             WHERE id = $1 AND status = 'pending'",
            &[&id.as_str(), &ms(until)],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn begin_probe(
        &self,
        hook: &HookId,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let taken = c
            .execute(
                "UPDATE outgoing_hooks SET breaker_until = $4
                 WHERE id = $1 AND consecutive_failures >= $2 AND COALESCE(breaker_until, 0) <= $3",
                &[&hook.as_str(), &i64::from(threshold), &ms(now), &ms(until)],
            )
            .await
            .map_err(pg)?;
        Ok(taken == 1)
    }

    async fn mark_packed(&self, ids: &[DeliveryId], pack: &str) -> Result<(), StoreError> {
        let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        let c = self.client().await?;
        c.execute(
            "UPDATE deliveries SET pack = $1,
                    lease_until = (SELECT MAX(lease_until) FROM deliveries WHERE id = ANY($2))
             WHERE id = ANY($2) AND status = 'pending'",
            &[&pack, &ids],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn degrade_agent(&self, agent: &AgentName, reason: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "UPDATE agents SET degraded_reason = $2 WHERE name = $1 AND degraded_reason IS NULL",
                &[&agent.as_str(), &reason],
            )
            .await
            .map_err(pg)?;
        self.commit_config(tx).await?;
        Ok(n == 1)
    }

    async fn subject_message(&self, target: &Target, subject: &str) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT message_id FROM subject_messages WHERE target = $1 AND subject = $2",
            &[&target_text(target), &subject],
        )
        .await
        .map_err(pg)?
        .map(|r| r.get(0)))
    }

    async fn record_attempts(&self, attempts: Vec<NewAttempt>) -> Result<Vec<BreakerTrip>, StoreError> {
        let now = ms(self.now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error,
                                       response_excerpt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (delivery_id, number) DO UPDATE SET started_at = excluded.started_at,
                     duration_ms = excluded.duration_ms, status_code = excluded.status_code,
                     error = excluded.error, response_excerpt = excluded.response_excerpt",
            )
            .await
            .map_err(pg)?;
        let update = tx
            .prepare_cached(
                // A pack to be retried stays one: its send may have arrived
                // with the answer lost, and only the same pack again carries
                // the nonce Discord deduplicates on.
                "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, lease_until = NULL,
                                       last_error = $5, updated_at = $6,
                                       pack = CASE WHEN $2 = 'pending' THEN pack END
                 WHERE id = $1",
            )
            .await
            .map_err(pg)?;
        let mut trips = Vec::new();
        for attempt in &attempts {
            let a = &attempt.attempt;
            tx.execute(
                &insert,
                &[
                    &a.delivery_id.as_str(),
                    &i64::from(a.number),
                    &ms(a.started_at),
                    &(a.duration_ms as i64),
                    &a.status_code.map(i32::from),
                    &a.error,
                    &a.response_excerpt,
                ],
            )
            .await
            .map_err(pg)?;
            let updated = tx
                .execute(
                    &update,
                    &[
                        &a.delivery_id.as_str(),
                        &attempt.status.as_str(),
                        &i64::from(a.number),
                        &ms(attempt.next_attempt_at),
                        &a.error,
                        &now,
                    ],
                )
                .await
                .map_err(pg)?;
            if updated == 0 {
                return Err(not_found("delivery", &a.delivery_id));
            }
            for shown in &attempt.subject_messages {
                keep_subject(&tx, &a.delivery_id, shown, now).await?;
            }
            if let Some(step) = &attempt.breaker {
                trips.extend(outgoing::breaker_step(&tx, step, now).await?);
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(trips)
    }

    async fn release_target(&self, target: &Target) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM target_leases WHERE target = $1 AND holder = $2",
            &[&target_text(target), &self.inner.replica],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn next_due(&self, kinds: &[TargetKind]) -> Result<Option<Timestamp>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let c = self.client().await?;
        let min: Option<i64> = c
            .query_one(
                &format!(
                    "SELECT MIN({READY_AT}) FROM deliveries
                     WHERE status = 'pending' AND target_kind = ANY($1) AND {NOT_HELD} AND {HEAD}"
                ),
                &[&kinds],
            )
            .await
            .map_err(pg)?
            .get(0);
        Ok(min.map(ts))
    }
}
