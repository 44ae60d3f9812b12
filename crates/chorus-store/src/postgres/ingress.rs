//! Ingress's part of the PostgreSQL store: hooks with their secrets, the
//! rules that answer senders, the durable insert, watchers' cursors.

use async_trait::async_trait;
use chorus_core::{HookId, IncomingHook, IngestOutcome, NewEvent, RateDecision, Rule, Secret, StoreError};
use jiff::Timestamp;

use super::{Columns, PostgresStore, hook_context, hook_from_row, json, ms, pg, records};

#[async_trait]
impl chorus_core::IngressStore for PostgresStore {
    async fn ingress_rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        let all = records::rules(&self.client().await?, hook).await?;
        Ok(if all.iter().any(|r| r.action == chorus_core::Action::Respond) { all } else { Vec::new() })
    }

    async fn hook_with_secrets(
        &self,
        id: &HookId,
    ) -> Result<Option<(IncomingHook, Vec<Secret>)>, StoreError> {
        let now = ms(self.now());
        let c = self.client().await?;
        let Some(row) =
            c.query_opt("SELECT * FROM hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)?
        else {
            return Ok(None);
        };
        let hook = hook_from_row(&row)?;
        let ctx = hook_context(id);
        let mut secrets = Vec::with_capacity(2);
        if let Some(s) = row.col::<Option<Vec<u8>>>("secret")? {
            secrets.push(self.key().open(&s, &ctx)?);
        }
        let previous: Option<Vec<u8>> = row.col("previous_secret")?;
        let expires: Option<i64> = row.col("previous_expires_at")?;
        if let (Some(p), Some(exp)) = (previous, expires)
            && exp > now
        {
            secrets.push(self.key().open(&p, &ctx)?);
        }
        Ok(Some((hook, secrets)))
    }

    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
        let c = self.client().await?;
        // One statement, so one round trip and its own transaction: the
        // unique index on (hook_id, delivery_key) decides duplicates, even
        // between replicas receiving the same retry at once.
        let stmt = c
            .prepare_cached(
                "INSERT INTO events (id, hook_id, agent, source, event_type, delivery_key, headers, body,
                                     received_at, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received')
                 ON CONFLICT DO NOTHING
                 RETURNING id, pg_notify('chorus_events', current_schema())",
            )
            .await
            .map_err(pg)?;
        let inserted = c
            .query_opt(
                &stmt,
                &[
                    &event.id.as_str(),
                    &event.hook_id.as_str(),
                    &event.agent.as_str(),
                    &event.source.as_str(),
                    &event.event_type,
                    &event.delivery_key,
                    &json(&event.headers),
                    &event.body,
                    &ms(event.received_at),
                ],
            )
            .await
            .map_err(pg)?;
        if inserted.is_some() {
            return Ok(IngestOutcome::Stored(event.id));
        }
        let original = c
            .query_one(
                "SELECT id FROM events WHERE hook_id = $1 AND delivery_key = $2",
                &[&event.hook_id.as_str(), &event.delivery_key],
            )
            .await
            .map_err(pg)?;
        Ok(IngestOutcome::Duplicate(original.parsed("id")?))
    }

    async fn take_rate(
        &self,
        key: &HookId,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError> {
        let capacity = f64::from(per_minute.max(1));
        let c = self.client().await?;
        // One statement: the row lock orders replicas taking from one
        // bucket, and `allowed` says whether this take found a whole token
        // (the refill is worked out from the old row in both columns).
        let row = c
            .query_one(
                "INSERT INTO rate_buckets (key, tokens, updated_at, allowed) VALUES ($1, $2::float8 - 1, $3, TRUE)
                 ON CONFLICT (key) DO UPDATE SET
                     allowed = LEAST($2, rate_buckets.tokens
                                         + GREATEST($3 - rate_buckets.updated_at, 0) * $2 / 60000.0) >= 1,
                     tokens = LEAST($2, rate_buckets.tokens
                                        + GREATEST($3 - rate_buckets.updated_at, 0) * $2 / 60000.0)
                              - CASE WHEN LEAST($2, rate_buckets.tokens
                                        + GREATEST($3 - rate_buckets.updated_at, 0) * $2 / 60000.0) >= 1
                                     THEN 1 ELSE 0 END,
                     updated_at = GREATEST($3, rate_buckets.updated_at)
                 RETURNING allowed, tokens",
                &[&key.as_str(), &capacity, &ms(now)],
            )
            .await
            .map_err(pg)?;
        if row.col::<bool>("allowed")? {
            return Ok(RateDecision::Allowed);
        }
        let missing = 1.0 - row.col::<f64>("tokens")?;
        Ok(RateDecision::Wait((missing * 60.0 / capacity).ceil().max(1.0) as u64))
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        Ok(c.query_opt("SELECT value FROM cursors WHERE name = $1", &[&name])
            .await
            .map_err(pg)?
            .map(|r| r.get(0)))
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let now = ms(self.now());
        let c = self.client().await?;
        c.execute(
            "INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            &[&name, &value, &now],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }
}
