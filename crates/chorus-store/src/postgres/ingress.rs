//! Ingress's part of the PostgreSQL store: hooks with their secrets, the
//! rules that answer senders, the durable insert, watchers' cursors.

use async_trait::async_trait;
use chorus_core::{HookId, IncomingHook, IngestOutcome, NewEvent, RateDecision, Rule, Secret, StoreError};
use jiff::Timestamp;

use super::{Columns, PostgresStore, hook_context, hook_from_row, ms, pg, records};

#[async_trait]
impl chorus_core::IngressStore for PostgresStore {
    async fn ingress_rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        let caching = self.caching();
        if caching && let Some(rules) = self.inner.lookups.rules(hook) {
            return Ok(rules);
        }
        let generation = self.inner.lookups.generation();
        let all = records::rules(&self.client().await?, hook).await?;
        let rules =
            if all.iter().any(|r| r.action == chorus_core::Action::Respond) { all } else { Vec::new() };
        if caching {
            self.inner.lookups.put_rules(generation, hook.clone(), rules.clone());
        }
        Ok(rules)
    }

    async fn hook_with_secrets(
        &self,
        id: &HookId,
    ) -> Result<Option<(IncomingHook, Vec<Secret>)>, StoreError> {
        let now = ms(self.now());
        let caching = self.caching();
        if caching && let Some(entry) = self.inner.lookups.hook(id) {
            let secrets = entry.secrets(now);
            return Ok(Some((entry.hook, secrets)));
        }
        let generation = self.inner.lookups.generation();
        let c = self.client().await?;
        let stmt = c.prepare_cached("SELECT * FROM hooks WHERE id = $1").await.map_err(pg)?;
        let Some(row) = c.query_opt(&stmt, &[&id.as_str()]).await.map_err(pg)? else {
            return Ok(None);
        };
        let hook = hook_from_row(&row)?;
        let ctx = hook_context(id);
        let secret = row.col::<Option<Vec<u8>>>("secret")?.map(|s| self.key().open(&s, &ctx)).transpose()?;
        let previous = match (
            row.col::<Option<Vec<u8>>>("previous_secret")?,
            row.col::<Option<i64>>("previous_expires_at")?,
        ) {
            (Some(p), Some(expires)) => Some((self.key().open(&p, &ctx)?, expires)),
            _ => None,
        };
        let entry = crate::cache::CachedHook { hook, secret, previous };
        let found = (entry.hook.clone(), entry.secrets(now));
        if caching {
            self.inner.lookups.put_hook(generation, entry);
        }
        Ok(Some(found))
    }

    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
        self.inner.batcher.ingest(event).await
    }

    async fn take_rate(
        &self,
        key: &HookId,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError> {
        let capacity = f64::from(per_minute.max(1));
        // A count lost to a crash costs a sender one request at most, so
        // this commit need not wait for the disk (ingest's does); and one
        // statement, so the bucket's row is locked only while it runs. The
        // row lock orders replicas taking from one bucket, and `allowed`
        // says whether this take found a whole token (the refill is worked
        // out from the old row in both columns).
        let c =
            self.inner.unsynced.get().await.map_err(|e| StoreError::Unavailable(format!("database: {e}")))?;
        let stmt = c
            .prepare_cached(
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
            )
            .await
            .map_err(pg)?;
        let row = c.query_one(&stmt, &[&key.as_str(), &capacity, &ms(now)]).await.map_err(pg)?;
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
