//! The PostgreSQL store: the same traits and guarantees as [`crate::SqliteStore`],
//! for several replicas on one database.
//!
//! Every write is one transaction on a pooled connection, committed before
//! the call returns. Jobs (events to route, deliveries, runs) are claimed
//! with `FOR UPDATE SKIP LOCKED` and a lease, so replicas never take the
//! same job and a replica that dies leaves leases that expire. Provider
//! delivery ids are deduplicated by a unique index, not by a lookup.
//! Nothing is cached between calls: another replica may have changed a
//! hook a moment ago.

mod batch;
mod delivery;
mod emission;
mod ingress;
mod management;
mod migrate;
mod outgoing;
mod records;
mod routing;
mod schema;
mod workflows;

use std::{
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use chorus_core::{
    Agent, AgentName, AuditEntry, Change, Clock, Delivery, DeliveryStatus, Event, EventId, EventStatus,
    HookId, IncomingHook, NewDelivery, Page, ReplyConfig, Secret, Source, Store, StoreError, Target,
    WatchGuard,
};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use jiff::Timestamp;
use tokio_postgres::{NoTls, Row, error::SqlState};

use crate::crypto::MasterKey;
pub use migrate::{MigrateError, MigrationReport, migrate_sqlite_to_postgres};

/// Tuning for [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections kept in the pool.
    pub connections: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { connections: 16 }
    }
}

/// The database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresOpenError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// No connection could be made.
    #[error("cannot connect to PostgreSQL at {host}")]
    Connect {
        /// `host:port` as the URL names it.
        host: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was migrated by a newer Chorus.
    #[error(
        "the database's schema is version {found}, newer than this binary's {known}: upgrade Chorus, or use a database this version made"
    )]
    NewerSchema {
        /// The database's version.
        found: i64,
        /// The newest this binary knows.
        known: i64,
    },
    /// A migration failed.
    #[error("migrating the database failed")]
    Migrate(#[source] tokio_postgres::Error),
}

/// Chorus's PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
    /// For a handle from [`Store::audited`]: the entry written in the same
    /// transaction as the first change made through it.
    pub(crate) audit: Option<Arc<Mutex<Option<AuditEntry>>>>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) key: MasterKey,
    pub(crate) clock: Arc<dyn Clock>,
    /// This process among the replicas: whose ordered targets are whose.
    pub(crate) replica: String,
    /// For the listening connection [`Store::watch`] opens.
    pub(crate) config: tokio_postgres::Config,
    /// Ingress's group commit.
    pub(crate) batcher: batch::Batcher,
    /// Hooks, agents and rules as ingress reads them on every request, kept
    /// only while this replica listens for the others' changes (see
    /// [`Store::watch`]), and dropped on each one.
    pub(crate) lookups: crate::cache::LookupCache,
    pub(crate) caching: std::sync::atomic::AtomicBool,
    /// Connections whose commits do not wait for the disk, for counts a
    /// crash may lose without harm (rate budgets, heartbeats): a hot row
    /// is locked only while its statement runs.
    pub(crate) unsynced: Pool,
}

/// A key for `pg_advisory_xact_lock`: replicas starting together migrate
/// one at a time.
const MIGRATION_LOCK: i64 = 0x6368_6f72_7573; // "chorus"

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host:port/db`), creating or
    /// migrating the schema.
    pub async fn open(url: &str, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, PostgresOpenError> {
        Self::open_with(url, key, clock, &PostgresOptions::default()).await
    }

    /// [`PostgresStore::open`] with explicit tuning.
    pub async fn open_with(
        url: &str,
        key: MasterKey,
        clock: Arc<dyn Clock>,
        options: &PostgresOptions,
    ) -> Result<Self, PostgresOpenError> {
        let config: tokio_postgres::Config = url.parse().map_err(PostgresOpenError::Url)?;
        let host = describe_host(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.connections.max(2))
            .build()
            .map_err(|e| PostgresOpenError::Connect { host: host.clone(), source: Box::new(e) })?;
        let mut client = pool.get().await.map_err(|e| PostgresOpenError::Connect {
            host: host.clone(),
            source: match e {
                deadpool_postgres::PoolError::Backend(e) => Box::new(e),
                other => Box::new(other),
            },
        })?;
        migrate(&mut client).await?;
        drop(client);
        let replica = chorus_core::random_token("replica_", 9);
        let batcher = batch::Batcher::start(&pool);
        let mut fast = config.clone();
        let given = fast.get_options().map_or_else(String::new, |o| format!("{o} "));
        fast.options(format!("{given}-c synchronous_commit=off"));
        let unsynced = Pool::builder(Manager::from_config(
            fast,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        ))
        .max_size(options.connections.max(2))
        .build()
        .map_err(|e| PostgresOpenError::Connect { host: host.clone(), source: Box::new(e) })?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                key,
                clock,
                replica,
                config,
                batcher,
                unsynced,
                lookups: crate::cache::LookupCache::default(),
                caching: std::sync::atomic::AtomicBool::new(false),
            }),
            audit: None,
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.inner.pool.get().await.map_err(|e| StoreError::Unavailable(format!("database: {e}")))
    }

    /// Commit `tx`, recording this handle's pending audit entry in it first:
    /// the change and its record land together or not at all.
    pub(crate) async fn commit(&self, tx: deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
        let entry = self.audit.as_ref().and_then(|a| a.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(entry) = &entry {
            records::record_audit(&tx, entry).await?;
        }
        tx.commit().await.map_err(pg)
    }

    /// [`Self::commit`] for a change to what ingress looks up (hooks,
    /// agents, rules): the other replicas hear of it and drop what they
    /// cached, and so does this one.
    pub(crate) async fn commit_config(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        notify(&tx, CONFIG_CHANNEL).await?;
        let committed = self.commit(tx).await;
        self.inner.lookups.invalidate();
        committed
    }

    /// Whether ingress's lookups may come from [`Inner::lookups`].
    pub(crate) fn caching(&self) -> bool {
        self.inner.caching.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    /// A pending audit entry without a target is about what this change
    /// creates: name it.
    pub(crate) fn name_audit_target(&self, id: &str) {
        if let Some(pending) = &self.audit
            && let Some(entry) = pending.lock().unwrap_or_else(PoisonError::into_inner).as_mut()
            && entry.target.is_none()
        {
            entry.target = Some(id.to_owned());
        }
    }
}

pub(crate) fn describe_host(config: &tokio_postgres::Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".into(),
        |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), PostgresOpenError> {
    let tx = client.transaction().await.map_err(PostgresOpenError::Migrate)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(PostgresOpenError::Migrate)?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('chorus_schema') IS NOT NULL", &[])
        .await
        .map_err(PostgresOpenError::Migrate)?
        .get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE chorus_schema (version BIGINT NOT NULL)")
            .await
            .map_err(PostgresOpenError::Migrate)?;
    }
    let done: Option<i64> = tx
        .query_opt("SELECT version FROM chorus_schema", &[])
        .await
        .map_err(PostgresOpenError::Migrate)?
        .map(|r| r.get(0));
    let known = schema::MIGRATIONS.len() as i64;
    let done = match done {
        Some(v) if v > known => return Err(PostgresOpenError::NewerSchema { found: v, known }),
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO chorus_schema (version) VALUES (0)", &[])
                .await
                .map_err(PostgresOpenError::Migrate)?;
            0
        }
    };
    for sql in schema::MIGRATIONS.iter().skip(done as usize) {
        tx.batch_execute(sql).await.map_err(PostgresOpenError::Migrate)?;
    }
    tx.execute("UPDATE chorus_schema SET version = $1", &[&known])
        .await
        .map_err(PostgresOpenError::Migrate)?;
    tx.commit().await.map_err(PostgresOpenError::Migrate)
}

/// Stops the listening task when the guard goes; from then on nothing
/// tells this replica of the others' changes, so it caches nothing.
struct Watching {
    task: tokio::task::AbortHandle,
    inner: Arc<Inner>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
        self.inner.caching.store(false, std::sync::atomic::Ordering::Release);
        self.inner.lookups.invalidate();
    }
}

/// The database failed.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
    {
        return StoreError::Unavailable(format!("database: {e}"));
    }
    StoreError::Backend(Box::new(e))
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A column holds what Chorus did not write.
#[derive(Debug, thiserror::Error)]
#[error("column {0} holds a value Chorus cannot read")]
pub(crate) struct Corrupt(String);

pub(crate) fn corrupt(col: &str) -> StoreError {
    StoreError::Backend(Box::new(Corrupt(col.to_owned())))
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// Typed reads of a row's columns, with the column named in the error.
pub(crate) trait Columns {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, name: &str) -> Result<T, StoreError>;

    fn parsed<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.col::<String>(name)?.parse().map_err(|_| corrupt(name))
    }

    fn parsed_opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.col::<Option<String>>(name)?.map(|v| v.parse().map_err(|_| corrupt(name))).transpose()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.col::<String>(name)?).map_err(|_| corrupt(name))
    }

    fn time(&self, name: &str) -> Result<Timestamp, StoreError> {
        self.col::<i64>(name).map(ts)
    }

    fn time_opt(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.col::<Option<i64>>(name)?.map(ts))
    }

    fn uint<T: TryFrom<i64>>(&self, name: &str) -> Result<T, StoreError> {
        T::try_from(self.col::<i64>(name)?).map_err(|_| corrupt(name))
    }

    fn uint_opt<T: TryFrom<i64>>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.col::<Option<i64>>(name)?.map(|v| T::try_from(v).map_err(|_| corrupt(name))).transpose()
    }
}

impl Columns for Row {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, name: &str) -> Result<T, StoreError> {
        self.try_get(name).map_err(|e| StoreError::Backend(Box::new(e)))
    }
}

pub(crate) fn hook_context(id: &HookId) -> String {
    format!("hook:{id}")
}

pub(crate) fn agent_context(name: &AgentName) -> String {
    format!("agent:{name}")
}

pub(crate) fn reply_context(id: &HookId) -> String {
    format!("hook-reply:{id}")
}

pub(crate) fn not_found(kind: &'static str, id: &impl ToString) -> StoreError {
    StoreError::NotFound { kind, id: id.to_string() }
}

/// Cursors are the `seq` of the last item of a page; newest first.
pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<i64, StoreError> {
    match cursor {
        None => Ok(i64::MAX),
        Some(c) => c.parse().map_err(|_| StoreError::Invalid(format!("invalid cursor {c:?}"))),
    }
}

pub(crate) fn page<T>(mut rows: Vec<(i64, T)>, limit: usize) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, _)| seq.to_string())
    } else {
        None
    };
    Page { items: rows.into_iter().map(|(_, t)| t).collect(), next_cursor }
}

pub(crate) fn agent_from_row(row: &Row, key: &MasterKey) -> Result<Agent, StoreError> {
    let name: AgentName = row.parsed("name")?;
    let sealed: Option<Vec<u8>> = row.col("discord_webhook_url")?;
    let discord_webhook_url = sealed.map(|s| key.open(&s, &agent_context(&name))).transpose()?;
    Ok(Agent {
        channel_id: row.col("channel_id")?,
        discord_webhook_url,
        enabled: row.col("enabled")?,
        degraded: row.col("degraded_reason")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        name,
    })
}

pub(crate) fn hook_from_row(row: &Row) -> Result<IncomingHook, StoreError> {
    let generic: Option<String> = row.col("generic")?;
    Ok(IncomingHook {
        id: row.parsed("id")?,
        agent: row.parsed("agent")?,
        name: row.col("name")?,
        slug: row.col("slug")?,
        source: row.parsed("source")?,
        generic: generic.map(|g| serde_json::from_str(&g)).transpose().map_err(|_| corrupt("generic"))?,
        enabled: row.col("enabled")?,
        rate_limit_per_minute: row.uint("rate_limit_per_minute")?,
        ip_allowlist: row.json("ip_allowlist")?,
        template: row.col("template")?,
        events: row.json("events")?,
        aggregate_secs: row.uint_opt("aggregate_secs")?,
        notify_changes: row.col("notify_changes")?,
        threads: row.col("threads")?,
        created_at: row.time("created_at")?,
        created_by: row.col("created_by")?,
        updated_at: row.time("updated_at")?,
    })
}

/// Events with their bodies, as `event_from_row` reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "e.seq, e.id, e.hook_id, e.agent, e.source, e.event_type, e.delivery_key,
    e.headers, e.body, e.received_at, e.status, e.outcomes";

pub(crate) fn event_from_row(row: &Row) -> Result<(i64, Event), StoreError> {
    let source: String = row.col("source")?;
    let status: String = row.col("status")?;
    Ok((
        row.col("seq")?,
        Event {
            id: row.parsed("id")?,
            hook_id: row.parsed("hook_id")?,
            agent: row.parsed("agent")?,
            source: source.parse::<Source>().map_err(|_| corrupt("source"))?,
            event_type: row.col("event_type")?,
            delivery_key: row.col("delivery_key")?,
            headers: row.json("headers")?,
            body: row.col("body")?,
            received_at: row.time("received_at")?,
            status: EventStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            outcomes: row
                .col::<Option<String>>("outcomes")?
                .map(|o| serde_json::from_str(&o))
                .transpose()
                .map_err(|_| corrupt("outcomes"))?
                .unwrap_or_default(),
        },
    ))
}

pub(crate) fn delivery_from_row(row: &Row) -> Result<Delivery, StoreError> {
    let status: String = row.col("status")?;
    Ok(Delivery {
        id: row.parsed("id")?,
        event_id: row.parsed_opt("event_id")?,
        hook_id: row.parsed("hook_id")?,
        target: row.json("target")?,
        payload: row.json("payload")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.uint("attempts")?,
        attempt_base: row.uint("attempt_base")?,
        next_attempt_at: row.time("next_attempt_at")?,
        last_error: row.col("last_error")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) async fn get_agent<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    name: &AgentName,
) -> Result<Option<Agent>, StoreError> {
    let stmt = c.prepare_cached("SELECT * FROM agents WHERE name = $1").await.map_err(pg)?;
    let row = c.query_opt(&stmt, &[&name.as_str()]).await.map_err(pg)?;
    row.map(|r| agent_from_row(&r, key)).transpose()
}

pub(crate) async fn get_hook<C: GenericClient>(
    c: &C,
    id: &HookId,
) -> Result<Option<IncomingHook>, StoreError> {
    let row = c.query_opt("SELECT * FROM hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)?;
    row.map(|r| hook_from_row(&r)).transpose()
}

/// New deliveries, pending from their due time; an id already present is
/// left as it is (a repeated commit).
pub(crate) async fn insert_deliveries<C: GenericClient>(
    c: &C,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, hook_id, target_kind, target, payload, status,
                                     next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8)
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(pg)?;
    notify(c, DELIVERIES_CHANNEL).await?;
    for d in deliveries {
        c.execute(
            &stmt,
            &[
                &d.id.as_str(),
                &d.event_id.as_ref().map(EventId::as_str),
                &d.hook_id.as_str(),
                &d.target.kind().as_str(),
                &json(&d.target),
                &json(&d.payload),
                &ms(d.due_at),
                &now,
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

/// The channels other replicas listen on: `chorus_events` when an event is
/// stored, `chorus_deliveries` when deliveries are. PostgreSQL sends them
/// when the transaction commits, and not at all if it rolls back. Channels
/// are database-wide, so the payload names the schema: deployments in other
/// schemas of the same database ignore each other.
pub(crate) const EVENTS_CHANNEL: &str = "chorus_events";
pub(crate) const DELIVERIES_CHANNEL: &str = "chorus_deliveries";
/// Hooks, agents or rules changed: cached lookups are stale.
pub(crate) const CONFIG_CHANNEL: &str = "chorus_config";

pub(crate) async fn notify<C: GenericClient>(c: &C, channel: &str) -> Result<(), StoreError> {
    c.execute("SELECT pg_notify($1, current_schema())", &[&channel]).await.map_err(pg)?;
    Ok(())
}

/// Listen on the work channels until dropped, calling `on_change` for each
/// notification; a lost connection is opened again (a second later, then
/// up to a minute apart), and each (re)connection reports both changes, so
/// work committed while it was down is looked for.
async fn listen(store: PostgresStore, on_change: Arc<dyn Fn(Change) + Send + Sync>) {
    let config = store.inner.config.clone();
    let lookups = |on: bool| {
        store.inner.lookups.invalidate();
        store.inner.caching.store(on, std::sync::atomic::Ordering::Release);
    };
    let mut backoff = std::time::Duration::from_secs(1);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let listened = async {
                    client
                        .batch_execute(&format!(
                            "LISTEN {EVENTS_CHANNEL}; LISTEN {DELIVERIES_CHANNEL}; LISTEN {CONFIG_CHANNEL};"
                        ))
                        .await?;
                    client.query_one("SELECT current_schema()", &[]).await.map(|r| r.get::<_, String>(0))
                };
                let mut listened = std::pin::pin!(listened);
                // The connection must be polled for LISTEN to complete.
                let schema = loop {
                    tokio::select! {
                        r = &mut listened => break r.ok(),
                        m = std::future::poll_fn(|cx| connection.poll_message(cx)) => {
                            if !matches!(m, Some(Ok(_))) {
                                break None;
                            }
                        }
                    }
                };
                if let Some(schema) = schema {
                    backoff = std::time::Duration::from_secs(1);
                    // Heard from now on: what is cached from here is dropped
                    // when another replica changes it.
                    lookups(true);
                    on_change(Change::Events);
                    on_change(Change::Deliveries);
                    while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        if let tokio_postgres::AsyncMessage::Notification(n) = message
                            && n.payload() == schema
                        {
                            match n.channel() {
                                EVENTS_CHANNEL => on_change(Change::Events),
                                DELIVERIES_CHANNEL => on_change(Change::Deliveries),
                                CONFIG_CHANNEL => {
                                    store.inner.lookups.invalidate();
                                    on_change(Change::Settings);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                // Deaf to the others' changes: look everything up again.
                lookups(false);
                tracing::warn!(
                    "the PostgreSQL connection listening for other replicas' work was lost; reconnecting"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for other replicas' work; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
    }
}

/// An incoming hook's source and reply credentials, unsealed.
pub(crate) async fn hook_reply<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    id: &HookId,
) -> Result<Option<(Source, ReplyConfig)>, StoreError> {
    let row =
        c.query_opt("SELECT source, reply FROM hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)?;
    let Some(row) = row else { return Ok(None) };
    let Some(sealed) = row.col::<Option<Vec<u8>>>("reply")? else { return Ok(None) };
    let source: Source = row.parsed("source")?;
    let opened = key.open(&sealed, &reply_context(id))?;
    let v: serde_json::Value = serde_json::from_str(opened.expose()).map_err(|_| StoreError::Unseal)?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let token = text("token").ok_or(StoreError::Unseal)?;
    Ok(Some((
        source,
        ReplyConfig { api_url: text("api_url"), email: text("email"), token: Secret::new(token) },
    )))
}

/// An incoming hook's current secret, unsealed.
pub(crate) async fn hook_secret<C: GenericClient>(
    c: &C,
    key: &MasterKey,
    id: &HookId,
) -> Result<Option<Secret>, StoreError> {
    let row = c.query_opt("SELECT secret FROM hooks WHERE id = $1", &[&id.as_str()]).await.map_err(pg)?;
    row.and_then(|r| r.col::<Option<Vec<u8>>>("secret").transpose())
        .transpose()?
        .map(|s| key.open(&s, &hook_context(id)))
        .transpose()
}

/// A claimed row is free again when its lease ran out, or when the replica
/// holding it stopped saying it is alive (`$1` is now). Rows claimed by a
/// store that never says so (one without [`Store::watch`]) wait for their
/// lease.
pub(crate) const LEASE_FREE: &str = "(lease_until IS NULL OR lease_until <= $1
    OR lease_holder IN (SELECT id FROM replicas WHERE seen_at < $1 - 15000))";

/// How long a replica may go without saying it is alive before what it
/// claimed is free; it says so every [`HEARTBEAT`].
pub(crate) const DEAD_AFTER_MS: i64 = 15_000;
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// Say this replica is alive, and forget replicas not heard from for a day.
async fn beat(store: &PostgresStore) {
    let now = ms(store.now());
    let beat = async {
        let c = store
            .inner
            .unsynced
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("database: {e}")))?;
        c.execute(
            "INSERT INTO replicas (id, seen_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            &[&store.inner.replica, &now],
        )
        .await
        .map_err(pg)?;
        c.execute("DELETE FROM replicas WHERE seen_at < $1", &[&(now - 86_400_000)]).await.map_err(pg)?;
        Ok::<_, StoreError>(())
    };
    if let Err(e) = beat.await {
        tracing::warn!(error = %e, "could not tell the other replicas this one is alive");
    }
}

/// [`beat`] every [`HEARTBEAT`].
async fn heartbeat(store: PostgresStore) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        beat(&store).await;
    }
}

/// Deliveries that wait without being claimed: to a paused or disabled
/// subscription, or to the Discord webhook of a degraded agent.
pub(crate) const NOT_HELD: &str = "NOT EXISTS (SELECT 1 FROM outgoing_hooks o
    WHERE o.id = deliveries.hook_id AND (o.paused OR NOT o.enabled))
    AND NOT (deliveries.target_kind = 'discord_webhook' AND EXISTS (SELECT 1 FROM agents a
    WHERE a.degraded_reason IS NOT NULL AND a.name = (deliveries.target::jsonb ->> 'agent')))";

/// When a delivery can next be sent: its own time, its lease's end, its
/// subscription's breaker's closing, whichever is last.
pub(crate) const READY_AT: &str = "GREATEST(next_attempt_at, COALESCE(lease_until, 0),
    COALESCE((SELECT b.breaker_until FROM outgoing_hooks b WHERE b.id = deliveries.hook_id), 0))";

/// A target as the `target` column holds it.
pub(crate) fn target_text(target: &Target) -> String {
    json(target)
}

#[async_trait]
impl Store for PostgresStore {
    async fn ready(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.query_one("SELECT 1", &[]).await.map_err(pg)?;
        Ok(())
    }

    fn watch(&self, on_change: Arc<dyn Fn(Change) + Send + Sync>) -> Option<WatchGuard> {
        let store = self.clone();
        let task = tokio::spawn(async move {
            // Alive before listening: whoever hears this replica's first
            // reports may count on it being seen as alive.
            beat(&store).await;
            tokio::join!(listen(store.clone(), on_change), heartbeat(store));
        });
        Some(WatchGuard(Box::new(Watching { task: task.abort_handle(), inner: self.inner.clone() })))
    }

    fn audited(&self, entry: AuditEntry) -> Arc<dyn Store> {
        Arc::new(Self { inner: self.inner.clone(), audit: Some(Arc::new(Mutex::new(Some(entry)))) })
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let removed = outgoing::purge(&tx, before).await?
            + workflows::purge(&tx, before).await?
            + delivery::purge_subjects(&tx, before).await?;
        tx.commit().await.map_err(pg)?;
        Ok(removed)
    }
}
