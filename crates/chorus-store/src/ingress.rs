//! Ingress's part of the SQLite store: hooks with their secrets, the
//! rules that answer senders, the durable insert, watchers' cursors.

use async_trait::async_trait;
use chorus_core::{HookId, IncomingHook, IngestOutcome, NewEvent, Rule, Secret, StoreError};
use rusqlite::params;

use crate::{cache::CachedHook, writer::backend};

use chorus_core::ManagementStore as _;

use crate::sqlite::{SqliteStore, corrupt, hook_context, hook_from_row, json, ms};

#[async_trait]
impl chorus_core::IngressStore for SqliteStore {
    async fn ingress_rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        if let Some(rules) = self.inner.lookups.rules(hook) {
            return Ok(rules);
        }
        let generation = self.inner.lookups.generation();
        let all = self.rules(hook).await?;
        let rules =
            if all.iter().any(|r| r.action == chorus_core::Action::Respond) { all } else { Vec::new() };
        self.inner.lookups.put_rules(generation, hook.clone(), rules.clone());
        Ok(rules)
    }

    async fn hook_with_secrets(
        &self,
        id: &HookId,
    ) -> Result<Option<(IncomingHook, Vec<Secret>)>, StoreError> {
        let now = ms(self.now());
        if let Some(entry) = self.inner.lookups.hook(id) {
            let secrets = entry.secrets(now);
            return Ok(Some((entry.hook, secrets)));
        }
        let generation = self.inner.lookups.generation();
        let id = id.clone();
        let found = self
            .read(move |conn, key| {
                let mut stmt = conn.prepare_cached("SELECT * FROM hooks WHERE id = ?1").map_err(backend)?;
                let mut rows = stmt.query([id.as_str()]).map_err(backend)?;
                let Some(row) = rows.next().map_err(backend)? else { return Ok(None) };
                let hook = hook_from_row(row).map_err(backend)?;
                let ctx = hook_context(&id);
                let secret = match row.get::<_, Option<Vec<u8>>>("secret").map_err(backend)? {
                    Some(s) => Some(key.open(&s, &ctx)?),
                    None => None,
                };
                let previous: Option<Vec<u8>> = row.get("previous_secret").map_err(backend)?;
                let expires: Option<i64> = row.get("previous_expires_at").map_err(backend)?;
                let previous = match (previous, expires) {
                    (Some(p), Some(exp)) => Some((key.open(&p, &ctx)?, exp)),
                    _ => None,
                };
                Ok(Some(CachedHook { hook, secret, previous }))
            })
            .await?;
        Ok(found.map(|entry| {
            let secrets = entry.secrets(now);
            let hook = entry.hook.clone();
            self.inner.lookups.put_hook(generation, entry);
            (hook, secrets)
        }))
    }

    async fn ingest(&self, mut event: NewEvent) -> Result<IngestOutcome, StoreError> {
        // Everything that can be done before the single writer is.
        let headers = json(&event.headers);
        let (body, encoding) = crate::bodies::seal(std::mem::take(&mut event.body));
        self.write(move |conn, _| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO events (id, hook_id, agent, source, event_type, delivery_key, headers,
                                         received_at, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'received')
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        event.id.as_str(),
                        event.hook_id.as_str(),
                        event.agent.as_str(),
                        event.source.as_str(),
                        event.event_type,
                        event.delivery_key,
                        headers,
                        ms(event.received_at),
                    ])
                })
                .map_err(backend)?;
            if inserted == 1 {
                conn.prepare_cached("INSERT INTO event_bodies (seq, body, encoding) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![conn.last_insert_rowid(), body, encoding]))
                    .map_err(backend)?;
                return Ok(IngestOutcome::Stored(event.id));
            }
            let original: String = conn
                .query_row(
                    "SELECT id FROM events WHERE hook_id = ?1 AND delivery_key = ?2",
                    params![event.hook_id.as_str(), event.delivery_key],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(IngestOutcome::Duplicate(original.parse().map_err(|_| backend(corrupt("id")))?))
        })
        .await
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, _| crate::subjects::cursor(conn, &name)).await
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        let now = ms(self.now());
        self.write(move |conn, _| crate::subjects::set_cursor(conn, &name, &value, now)).await
    }
}
