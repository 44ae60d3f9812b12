use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use async_trait::async_trait;
use chorus_core::{
    Agent, AgentName, AuditEntry, ClaimedDelivery, Clock, Delivery, DeliveryStatus, Event, EventId,
    EventStatus, HookId, HttpSpec, IncomingHook, NewDelivery, Page, ReplyConfig, Secret, Source, Store,
    StoreError, Target, TargetKind,
};
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter, types::Value};

use crate::{
    access,
    cache::LookupCache,
    crypto::MasterKey,
    outgoing, schema,
    writer::{Checkpointer, Writer, backend},
};

/// How often the WAL is folded back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Tuning for [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writes queued beyond this are refused (`Unavailable`) instead of buffered.
    pub write_queue: usize,
    /// Read connections kept open.
    pub readers: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { write_queue: 16_384, readers: 8 }
    }
}

/// Chorus's SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
    /// For a handle from [`Store::audited`]: the entry written in the same
    /// transaction as the first change made through it.
    pub(crate) audit: Option<Arc<std::sync::Mutex<Option<AuditEntry>>>>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    /// Held for the store's lifetime: one process per database.
    _lock: std::fs::File,
    pub(crate) writer: Writer,
    /// The writer's group commits, for `/metrics`.
    pub(crate) commits: chorus_core::CommitRecorder,
    _checkpointer: Checkpointer,
    pub(crate) readers: Mutex<Vec<Connection>>,
    pub(crate) max_readers: usize,
    pub(crate) key: MasterKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lookups: LookupCache,
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

pub(crate) fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

pub(crate) fn parse_col<T: std::str::FromStr>(row: &Row<'_>, col: &str) -> rusqlite::Result<T> {
    row.get::<_, String>(col)?.parse().map_err(|_| corrupt(col))
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: &str) -> rusqlite::Result<T> {
    serde_json::from_str(&row.get::<_, String>(col)?).map_err(|_| corrupt(col))
}

/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 128;

pub(crate) fn open_conn(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The writer alone runs more distinct hot statements (savepoints,
    // ingest, claims, routing, deliveries) than rusqlite's default of 16,
    // and a cache that small evicts them in turn under mixed load.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

pub(crate) fn hook_context(id: &HookId) -> String {
    format!("hook:{id}")
}

pub(crate) fn agent_context(name: &AgentName) -> String {
    format!("agent:{name}")
}

impl SqliteStore {
    /// Lease due deliveries matching `filter` (SQL over `deliveries`, with
    /// `params` for its placeholders) and resolve what sending them needs.
    pub(crate) async fn claim(
        &self,
        filter: String,
        params: Vec<Value>,
        order: &'static str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let claimed_at = now;
        let (now, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        self.write(move |conn, key| {
            // The times are bound, not written into the text: a text that
            // changed every millisecond was prepared anew on each claim and
            // pushed the hot statements out of the connection's cache. `?1`
            // and `?2` come first so the filter's `?`s number from 3.
            let in_turn = IN_TURN.replace("NOW", "?2");
            let breaker_closed = BREAKER_CLOSED.replace("NOW", "?2");
            let sql = format!(
                "UPDATE deliveries SET lease_until = ?1
                 WHERE seq IN (SELECT seq FROM deliveries
                               WHERE status = 'pending'
                                 AND next_attempt_at <= ?2
                                 AND (lease_until IS NULL OR lease_until <= ?2)
                                 AND {filter}
                                 AND {NOT_HELD}
                                 AND {in_turn}
                                 AND {breaker_closed}
                               ORDER BY {order} LIMIT {limit})
                 RETURNING *"
            );
            let mut deliveries: Vec<(i64, Delivery, Option<String>)> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    let times = [Value::Integer(until), Value::Integer(now)];
                    s.query_map(params_from_iter(times.iter().chain(&params)), |row| {
                        Ok((row.get("seq")?, delivery_from_row(row)?, row.get("pack")?))
                    })?
                    .collect()
                })
                .map_err(backend)?;
            // RETURNING keeps no order: an ordered target's worker sends its
            // queue as it comes, so put it back in the order they were made.
            deliveries.sort_by_key(|(seq, ..)| *seq);
            // A batch mostly goes to a few subscriptions: open each one's
            // sealed secret and auth once, not once per delivery.
            let mut specs: HashMap<HookId, Option<HttpSpec>> = HashMap::new();
            deliveries
                .into_iter()
                .map(|(_, delivery, pack)| {
                    let mut signing_secret = None;
                    let mut reply = None;
                    let (webhook_url, http) = match &delivery.target {
                        Target::DiscordWebhook { agent } => {
                            (get_agent(conn, key, agent)?.and_then(|a| a.discord_webhook_url), None)
                        }
                        Target::DiscordChannel { .. } => (None, None),
                        Target::Forward { hook_id } => {
                            signing_secret = hook_secret(conn, key, hook_id)?;
                            (None, None)
                        }
                        Target::Reply { hook_id } => {
                            reply = hook_reply(conn, key, hook_id)?;
                            (None, None)
                        }
                        Target::Http { hook_id } => {
                            let spec = match specs.get(hook_id) {
                                Some(spec) => spec.clone(),
                                None => {
                                    let spec = crate::outgoing::http_spec(conn, key, hook_id, claimed_at)?;
                                    specs.insert(hook_id.clone(), spec.clone());
                                    spec
                                }
                            };
                            (None, spec)
                        }
                    };
                    Ok(ClaimedDelivery {
                        delivery,
                        webhook_url,
                        http,
                        signing_secret,
                        reply,
                        pack,
                        edit: None,
                        thread: None,
                    })
                })
                .collect()
        })
        .await
    }

    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_with(path, key, clock, &StoreOptions::default())
    }

    /// [`SqliteStore::open`] with explicit tuning.
    pub fn open_with(
        path: impl AsRef<Path>,
        key: MasterKey,
        clock: Arc<dyn Clock>,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        let lock = lock_database(&path)?;
        let mut conn = open_conn(&path, OpenFlags::default()).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        // FULL: in WAL mode NORMAL may lose the last commits on power loss;
        // a 2xx promises the event is on disk, so every commit is fsync'd.
        conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
        // Savepoint sub-journals (one per operation in a group commit) stay
        // in memory rather than in a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(backend)?;
        // The checkpointer thread does this work instead; the WAL file is cut
        // back to 64 MiB after each reset so a burst does not keep it large.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(backend)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024).map_err(backend)?;
        schema::migrate(&mut conn).map_err(backend)?;
        // One process serves a SQLite database, so every lease found at open
        // belonged to a process that is gone (crashed or killed mid-send):
        // release them so that work resumes now, not when the leases expire.
        conn.execute_batch(
            "UPDATE events SET lease_until = NULL WHERE lease_until IS NOT NULL;
             UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL;
             UPDATE runs SET lease_until = NULL WHERE lease_until IS NOT NULL;",
        )
        .map_err(backend)?;
        let restart = Arc::new(AtomicBool::new(false));
        let commits = chorus_core::CommitRecorder::default();
        let checkpointer = Checkpointer::spawn(
            open_conn(&path, OpenFlags::default()).map_err(backend)?,
            CHECKPOINT_EVERY,
            restart.clone(),
        );
        Ok(Self {
            audit: None,
            inner: Arc::new(Inner {
                path,
                _lock: lock,
                writer: Writer::spawn(conn, options.write_queue, restart, commits.clone()),
                commits,
                _checkpointer: checkpointer,
                readers: Mutex::new(Vec::new()),
                max_readers: options.readers,
                key,
                clock,
                lookups: LookupCache::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &MasterKey) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool").pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    open_conn(&inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                        .map_err(backend)?
                }
            };
            let result = f(&conn, &inner.key);
            let mut pool = inner.readers.lock().expect("reader pool");
            if pool.len() < inner.max_readers {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &MasterKey) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let key = self.inner.key.clone();
        let audit = self
            .audit
            .as_ref()
            .and_then(|a| a.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        self.inner
            .writer
            .write(move |conn| {
                let out = f(conn, &key)?;
                // In the change's own savepoint: both land, or neither.
                if let Some(entry) = &audit {
                    access::record(conn, entry)?;
                }
                Ok(out)
            })
            .await
    }

    /// [`Self::write`] for a change to agents or hooks: what ingress has
    /// cached is dropped once the change is committed.
    pub(crate) async fn write_lookups<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &MasterKey) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let result = self.write(f).await;
        self.inner.lookups.invalidate();
        result
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// A pending audit entry without a target is about what this change
    /// creates: name it.
    pub(crate) fn name_audit_target(&self, id: &str) {
        if let Some(pending) = &self.audit
            && let Some(entry) = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut()
            && entry.target.is_none()
        {
            entry.target = Some(id.to_owned());
        }
    }
}

/// Take `<db>.lock` exclusively, so a second process cannot open the same
/// database (its leases and group commit assume a single writer process).
pub(crate) fn lock_database(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::Unavailable(format!("{} is in use by another Chorus process", path.display())))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(Box::new(e))),
    }
}

pub(crate) fn agent_from_row(row: &Row<'_>, key: &MasterKey) -> Result<Agent, StoreError> {
    let name: AgentName = parse_col(row, "name").map_err(backend)?;
    let sealed: Option<Vec<u8>> = row.get("discord_webhook_url").map_err(backend)?;
    let discord_webhook_url = sealed.map(|s| key.open(&s, &agent_context(&name))).transpose()?;
    Ok(Agent {
        channel_id: row.get("channel_id").map_err(backend)?,
        discord_webhook_url,
        enabled: row.get("enabled").map_err(backend)?,
        degraded: row.get("degraded_reason").map_err(backend)?,
        created_at: ts(row.get("created_at").map_err(backend)?),
        updated_at: ts(row.get("updated_at").map_err(backend)?),
        name,
    })
}

pub(crate) fn hook_from_row(row: &Row<'_>) -> rusqlite::Result<IncomingHook> {
    let generic: Option<String> = row.get("generic")?;
    Ok(IncomingHook {
        id: parse_col(row, "id")?,
        agent: parse_col(row, "agent")?,
        name: row.get("name")?,
        slug: row.get("slug")?,
        source: parse_col(row, "source")?,
        generic: generic.map(|g| serde_json::from_str(&g)).transpose().map_err(|_| corrupt("generic"))?,
        enabled: row.get("enabled")?,
        rate_limit_per_minute: row.get("rate_limit_per_minute")?,
        ip_allowlist: json_col(row, "ip_allowlist")?,
        template: row.get("template")?,
        events: json_col(row, "events")?,
        aggregate_secs: row.get("aggregate_secs")?,
        notify_changes: row.get("notify_changes")?,
        threads: row.get("threads")?,
        created_at: ts(row.get("created_at")?),
        created_by: row.get("created_by")?,
        updated_at: ts(row.get("updated_at")?),
    })
}

pub(crate) fn reply_context(id: &HookId) -> String {
    format!("hook-reply:{id}")
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// New deliveries, pending from their due time; an id already present is
/// left as it is (a repeated commit).
pub(crate) fn insert_deliveries(
    conn: &Connection,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<(), StoreError> {
    insert_encoded_deliveries(conn, deliveries, &encode_deliveries(deliveries), now)
}

/// Each delivery's target and payload as the JSON text stored, so a hot
/// path can write it before the single writer takes the rows.
pub(crate) fn encode_deliveries(deliveries: &[NewDelivery]) -> Vec<(String, String)> {
    deliveries.iter().map(|d| (json(&d.target), json(&d.payload))).collect()
}

/// [`insert_deliveries`] with the JSON of [`encode_deliveries`].
pub(crate) fn insert_encoded_deliveries(
    conn: &Connection,
    deliveries: &[NewDelivery],
    encoded: &[(String, String)],
    now: i64,
) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, hook_id, target_kind, target, payload, status,
                                     next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?8)
             ON CONFLICT(id) DO NOTHING",
        )
        .map_err(backend)?;
    for (d, (target, payload)) in deliveries.iter().zip(encoded) {
        insert
            .execute(params![
                d.id.as_str(),
                d.event_id.as_ref().map(EventId::as_str),
                d.hook_id.as_str(),
                target_kind(&d.target).as_str(),
                target,
                payload,
                ms(d.due_at),
                now,
            ])
            .map_err(backend)?;
    }
    Ok(())
}

/// An incoming hook's source and reply credentials, unsealed.
pub(crate) fn hook_reply(
    conn: &Connection,
    key: &MasterKey,
    id: &HookId,
) -> Result<Option<(Source, ReplyConfig)>, StoreError> {
    let row: Option<(String, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT source, reply FROM hooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(backend)?;
    let Some((source, Some(sealed))) = row else { return Ok(None) };
    let source: Source = source.parse().map_err(|_| backend(corrupt("source")))?;
    let opened = key.open(&sealed, &reply_context(id))?;
    let v: serde_json::Value = serde_json::from_str(opened.expose()).map_err(|_| StoreError::Unseal)?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    let token = text("token").ok_or(StoreError::Unseal)?;
    Ok(Some((
        source,
        ReplyConfig { api_url: text("api_url"), email: text("email"), token: Secret::new(token) },
    )))
}

/// An incoming hook's current secret, unsealed (`None` for a hook without
/// one, or a hook that is gone).
pub(crate) fn hook_secret(
    conn: &Connection,
    key: &MasterKey,
    id: &HookId,
) -> Result<Option<Secret>, StoreError> {
    let sealed: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT secret FROM hooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(backend)?;
    sealed.flatten().map(|s| key.open(&s, &hook_context(id))).transpose()
}

/// Events with their bodies; `event_from_row` reads rows of this shape.
macro_rules! EVENT_SELECT {
    () => {
        "SELECT e.*, b.body, b.encoding FROM events e JOIN event_bodies b ON b.seq = e.seq"
    };
}
pub(crate) use EVENT_SELECT;

pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Event)> {
    let source: String = row.get("source")?;
    let status: String = row.get("status")?;
    Ok((
        row.get("seq")?,
        Event {
            id: parse_col(row, "id")?,
            hook_id: parse_col(row, "hook_id")?,
            agent: parse_col(row, "agent")?,
            source: source.parse::<Source>().map_err(|_| corrupt("source"))?,
            event_type: row.get("event_type")?,
            delivery_key: row.get("delivery_key")?,
            headers: json_col(row, "headers")?,
            body: crate::bodies::open(row.get("body")?, row.get("encoding")?)
                .ok_or_else(|| corrupt("body"))?,
            received_at: ts(row.get("received_at")?),
            status: EventStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            outcomes: row
                .get::<_, Option<String>>("outcomes")?
                .map(|o| serde_json::from_str(&o))
                .transpose()
                .map_err(|_| corrupt("outcomes"))?
                .unwrap_or_default(),
        },
    ))
}

pub(crate) fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: String = row.get("status")?;
    let event_id: Option<String> = row.get("event_id")?;
    Ok(Delivery {
        id: parse_col(row, "id")?,
        event_id: event_id.map(|e| e.parse()).transpose().map_err(|_| corrupt("event_id"))?,
        hook_id: parse_col(row, "hook_id")?,
        target: json_col(row, "target")?,
        payload: json_col(row, "payload")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.get("attempts")?,
        attempt_base: row.get("attempt_base")?,
        next_attempt_at: ts(row.get("next_attempt_at")?),
        last_error: row.get("last_error")?,
        created_at: ts(row.get("created_at")?),
        updated_at: ts(row.get("updated_at")?),
    })
}

pub(crate) fn target_kind(target: &Target) -> TargetKind {
    target.kind()
}

/// Deliveries of a paused or disabled subscription are held, neither
/// claimed nor counted as due.
/// Deliveries that wait without being claimed: to a paused or disabled
/// subscription, or to the Discord webhook of a degraded agent.
pub(crate) const NOT_HELD: &str = "NOT EXISTS (SELECT 1 FROM outgoing_hooks o
    WHERE o.id = deliveries.hook_id AND (o.paused = 1 OR o.enabled = 0))
    AND NOT (deliveries.target_kind = 'discord_webhook' AND EXISTS (SELECT 1 FROM agents a
    WHERE a.degraded_reason IS NOT NULL AND a.name = json_extract(deliveries.target, '$.agent')))";

/// A delivery to an ordered target (a Discord channel or webhook) waits
/// while an older one to the same target waits for a later retry: the
/// channel shows events in the order they arrived, whatever failed between.
/// `NOW` stands for the claim's time.
pub(crate) const IN_TURN: &str = "(deliveries.target_kind NOT IN ('discord_channel', 'discord_webhook')
    OR NOT EXISTS (SELECT 1 FROM deliveries older
        WHERE older.status = 'pending' AND older.target = deliveries.target
          AND older.target_kind = deliveries.target_kind AND older.seq < deliveries.seq
          AND older.next_attempt_at > NOW))";

/// Deliveries of a subscription whose circuit breaker is open wait until
/// it closes. `NOW` stands for the claim's time.
pub(crate) const BREAKER_CLOSED: &str = "NOT EXISTS (SELECT 1 FROM outgoing_hooks b
    WHERE b.id = deliveries.hook_id AND b.breaker_until > NOW)";

/// When a delivery can next be sent: its own time, its lease's end, its
/// subscription's breaker's closing, whichever is last.
pub(crate) const READY_AT: &str = "MAX(next_attempt_at, COALESCE(lease_until, 0),
    COALESCE((SELECT b.breaker_until FROM outgoing_hooks b WHERE b.id = deliveries.hook_id), 0))";

/// The oldest pending delivery of an ordered target, or any pending
/// delivery of another kind: when the next send can happen.
pub(crate) const HEAD: &str = "(deliveries.target_kind NOT IN ('discord_channel', 'discord_webhook')
    OR NOT EXISTS (SELECT 1 FROM deliveries older
        WHERE older.status = 'pending' AND older.target = deliveries.target
          AND older.target_kind = deliveries.target_kind AND older.seq < deliveries.seq))";

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

pub(crate) fn not_found(kind: &'static str, id: &impl ToString) -> StoreError {
    StoreError::NotFound { kind, id: id.to_string() }
}

pub(crate) fn get_agent(
    conn: &Connection,
    key: &MasterKey,
    name: &AgentName,
) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT * FROM agents WHERE name = ?1").map_err(backend)?;
    let mut rows = stmt.query([name.as_str()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => agent_from_row(row, key).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn get_hook(conn: &Connection, id: &HookId) -> Result<Option<IncomingHook>, StoreError> {
    conn.prepare_cached("SELECT * FROM hooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], hook_from_row).optional())
        .map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<(), StoreError> {
        if self.inner.writer.capacity() == 0 {
            return Err(StoreError::Unavailable("write queue full".into()));
        }
        self.read(|conn, _| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }

    fn audited(&self, entry: AuditEntry) -> Arc<dyn Store> {
        Arc::new(Self {
            inner: self.inner.clone(),
            audit: Some(Arc::new(std::sync::Mutex::new(Some(entry)))),
        })
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |conn, _| {
            Ok(outgoing::purge(conn, before)?
                + crate::workflows::purge(conn, before)?
                + crate::subjects::purge(conn, before)?)
        })
        .await
    }
}
