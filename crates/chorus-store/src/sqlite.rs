use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use async_trait::async_trait;
use chorus_core::{
    Agent, AgentName, AgentPatch, ApiToken, Attempt, AuditEntry, ClaimedDelivery, Clock, Delivery,
    DeliveryCounts, DeliveryId, DeliveryQuery, DeliveryStatus, Event, EventId, EventQuery, EventStatus,
    HookId, HookPatch, HookStats, HttpSpec, IdempotentResponse, IncomingHook, IngestOutcome, NewAgent,
    NewApiToken, NewAttempt, NewDelivery, NewEvent, NewOutgoingEvent, OutgoingAuth, OutgoingHook,
    OutgoingPatch, Page, ReplyConfig, RoutedEvent, Rule, Secret, Source, Store, StoreError, Target,
    TargetKind, Task, TaskQuery, TaskStatus,
};
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter, types::Value};

use crate::{
    access,
    cache::{CachedHook, LookupCache},
    crypto::MasterKey,
    idempotency, outgoing, rules, schema, tasks,
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
    inner: Arc<Inner>,
    /// For a handle from [`Store::audited`]: the entry written in the same
    /// transaction as the first change made through it.
    audit: Option<Arc<std::sync::Mutex<Option<AuditEntry>>>>,
}

struct Inner {
    path: PathBuf,
    /// Held for the store's lifetime: one process per database.
    _lock: std::fs::File,
    writer: Writer,
    _checkpointer: Checkpointer,
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    key: MasterKey,
    clock: Arc<dyn Clock>,
    lookups: LookupCache,
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

fn open_conn(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn hook_context(id: &HookId) -> String {
    format!("hook:{id}")
}

fn agent_context(name: &AgentName) -> String {
    format!("agent:{name}")
}

impl SqliteStore {
    /// Lease due deliveries matching `filter` (SQL over `deliveries`, with
    /// `params` for its placeholders) and resolve what sending them needs.
    async fn claim(
        &self,
        filter: String,
        params: Vec<Value>,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let claimed_at = now;
        let (now, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        self.write(move |conn, key| {
            let sql = format!(
                "UPDATE deliveries SET lease_until = {until}
                 WHERE seq IN (SELECT seq FROM deliveries
                               WHERE status = 'pending' AND {filter}
                                 AND next_attempt_at <= {now}
                                 AND (lease_until IS NULL OR lease_until <= {now})
                                 AND {NOT_HELD}
                               ORDER BY next_attempt_at, seq LIMIT {limit})
                 RETURNING *"
            );
            let deliveries: Vec<(Delivery, Option<String>)> = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map(params_from_iter(params.iter()), |row| {
                        Ok((delivery_from_row(row)?, row.get("pack")?))
                    })?
                    .collect()
                })
                .map_err(backend)?;
            // A batch mostly goes to a few subscriptions: open each one's
            // sealed secret and auth once, not once per delivery.
            let mut specs: HashMap<HookId, Option<HttpSpec>> = HashMap::new();
            deliveries
                .into_iter()
                .map(|(delivery, pack)| {
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
                writer: Writer::spawn(conn, options.write_queue, restart),
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
    async fn write_lookups<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &MasterKey) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let result = self.write(f).await;
        self.inner.lookups.invalidate();
        result
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// A pending audit entry without a target is about what this change
    /// creates: name it.
    fn name_audit_target(&self, id: &str) {
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
fn lock_database(path: &Path) -> Result<std::fs::File, StoreError> {
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

fn agent_from_row(row: &Row<'_>, key: &MasterKey) -> Result<Agent, StoreError> {
    let name: AgentName = parse_col(row, "name").map_err(backend)?;
    let sealed: Option<Vec<u8>> = row.get("discord_webhook_url").map_err(backend)?;
    let discord_webhook_url = sealed.map(|s| key.open(&s, &agent_context(&name))).transpose()?;
    Ok(Agent {
        channel_id: row.get("channel_id").map_err(backend)?,
        discord_webhook_url,
        enabled: row.get("enabled").map_err(backend)?,
        created_at: ts(row.get("created_at").map_err(backend)?),
        updated_at: ts(row.get("updated_at").map_err(backend)?),
        name,
    })
}

fn hook_from_row(row: &Row<'_>) -> rusqlite::Result<IncomingHook> {
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

fn reply_context(id: &HookId) -> String {
    format!("hook-reply:{id}")
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// New deliveries, pending from their due time; an id already present is
/// left as it is (a repeated commit).
pub(crate) fn insert_deliveries(
    conn: &Connection,
    deliveries: &[NewDelivery],
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
    for d in deliveries {
        insert
            .execute(params![
                d.id.as_str(),
                d.event_id.as_ref().map(EventId::as_str),
                d.hook_id.as_str(),
                target_kind(&d.target).as_str(),
                json(&d.target),
                json(&d.payload),
                ms(d.due_at),
                now,
            ])
            .map_err(backend)?;
    }
    Ok(())
}

/// An incoming hook's source and reply credentials, unsealed.
fn hook_reply(
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
fn hook_secret(conn: &Connection, key: &MasterKey, id: &HookId) -> Result<Option<Secret>, StoreError> {
    let sealed: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT secret FROM hooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(backend)?;
    sealed.flatten().map(|s| key.open(&s, &hook_context(id))).transpose()
}

/// Events with their bodies; `event_from_row` reads rows of this shape.
macro_rules! EVENT_SELECT {
    () => {
        "SELECT e.*, b.body FROM events e JOIN event_bodies b ON b.seq = e.seq"
    };
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Event)> {
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
            body: row.get("body")?,
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
const NOT_HELD: &str = "NOT EXISTS (SELECT 1 FROM outgoing_hooks o
    WHERE o.id = deliveries.hook_id AND (o.paused = 1 OR o.enabled = 0))";

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

fn get_agent(conn: &Connection, key: &MasterKey, name: &AgentName) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT * FROM agents WHERE name = ?1").map_err(backend)?;
    let mut rows = stmt.query([name.as_str()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => agent_from_row(row, key).map(Some),
        None => Ok(None),
    }
}

fn get_hook(conn: &Connection, id: &HookId) -> Result<Option<IncomingHook>, StoreError> {
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

    async fn create_agent(&self, agent: NewAgent) -> Result<Agent, StoreError> {
        self.name_audit_target(agent.name.as_str());
        let now = ms(self.now());
        self.write(move |conn, key| {
            let sealed = agent.discord_webhook_url.as_ref().map(|u| key.seal(u, &agent_context(&agent.name)));
            let inserted = conn
                .execute(
                    "INSERT INTO agents (name, channel_id, discord_webhook_url, enabled, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                    params![agent.name.as_str(), agent.channel_id, sealed, agent.enabled, now],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("agent {} already exists", agent.name)));
            }
            get_agent(conn, key, &agent.name)?.ok_or_else(|| not_found("agent", &agent.name))
        })
        .await
    }

    async fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError> {
        if let Some(agent) = self.inner.lookups.agent(name) {
            return Ok(Some(agent));
        }
        let generation = self.inner.lookups.generation();
        let name = name.clone();
        let found = self.read(move |conn, key| get_agent(conn, key, &name)).await?;
        if let Some(agent) = &found {
            self.inner.lookups.put_agent(generation, agent.clone());
        }
        Ok(found)
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(|conn, key| {
            let mut stmt = conn.prepare_cached("SELECT * FROM agents ORDER BY name").map_err(backend)?;
            let mut rows = stmt.query([]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                out.push(agent_from_row(row, key)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_agent(&self, name: &AgentName, patch: AgentPatch) -> Result<Agent, StoreError> {
        let name = name.clone();
        let now = ms(self.now());
        self.write_lookups(move |conn, key| {
            let mut current = get_agent(conn, key, &name)?.ok_or_else(|| not_found("agent", &name))?;
            if let Some(c) = patch.channel_id {
                current.channel_id = c;
            }
            if let Some(u) = patch.discord_webhook_url {
                current.discord_webhook_url = u;
            }
            if let Some(e) = patch.enabled {
                current.enabled = e;
            }
            let sealed = current.discord_webhook_url.as_ref().map(|u| key.seal(u, &agent_context(&name)));
            conn.execute(
                "UPDATE agents SET channel_id = ?2, discord_webhook_url = ?3, enabled = ?4, updated_at = ?5
                 WHERE name = ?1",
                params![name.as_str(), current.channel_id, sealed, current.enabled, now],
            )
            .map_err(backend)?;
            get_agent(conn, key, &name)?.ok_or_else(|| not_found("agent", &name))
        })
        .await
    }

    async fn delete_agent(&self, name: &AgentName) -> Result<(), StoreError> {
        let name = name.clone();
        self.write_lookups(move |conn, _| {
            match conn.execute("DELETE FROM agents WHERE name = ?1", [name.as_str()]).map_err(backend)? {
                0 => Err(not_found("agent", &name)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn create_hook_with_rules(
        &self,
        hook: IncomingHook,
        secret: Option<Secret>,
        rules: Vec<Rule>,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        self.write(move |conn, key| {
            let sealed = secret.as_ref().map(|s| key.seal(s, &hook_context(&hook.id)));
            let exists: bool = conn
                .query_row("SELECT EXISTS(SELECT 1 FROM agents WHERE name = ?1)", [hook.agent.as_str()], |r| r.get(0))
                .map_err(backend)?;
            if !exists {
                return Err(not_found("agent", &hook.agent));
            }
            conn.execute(
                "INSERT INTO hooks (id, agent, name, source, generic, enabled, rate_limit_per_minute, ip_allowlist,
                                    template, events, secret, created_at, created_by, updated_at, slug, aggregate_secs,
                                    notify_changes, threads)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?12, ?14, ?15, ?16, ?17)",
                params![
                    hook.id.as_str(),
                    hook.agent.as_str(),
                    hook.name,
                    hook.source.as_str(),
                    hook.generic.as_ref().map(json),
                    hook.enabled,
                    hook.rate_limit_per_minute,
                    json(&hook.ip_allowlist),
                    hook.template,
                    json(&hook.events),
                    sealed,
                    ms(hook.created_at),
                    hook.created_by,
                    hook.slug,
                    hook.aggregate_secs,
                    hook.notify_changes,
                    hook.threads,
                ],
            )
            .map_err(|e| match &hook.slug {
                Some(slug) if is_unique_violation(&e) => {
                    StoreError::Conflict(format!("webhook_id {slug:?} is taken by another hook"))
                }
                _ => backend(e),
            })?;
            if !rules.is_empty() {
                rules::replace(conn, &hook.id, &rules)?;
            }
            Ok(())
        })
        .await
    }

    async fn hook_by_slug(&self, slug: &str) -> Result<Option<HookId>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |conn, _| {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM hooks WHERE slug = ?1")
                .and_then(|mut s| s.query_row([&slug], |r| r.get(0)).optional())
                .map_err(backend)?;
            id.map(|i| i.parse().map_err(|_| backend(corrupt("id")))).transpose()
        })
        .await
    }

    async fn hook(&self, id: &HookId) -> Result<Option<IncomingHook>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| get_hook(conn, &id)).await
    }

    async fn rotate_secret(
        &self,
        id: &HookId,
        secret: Secret,
        grace_until: Timestamp,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let now = self.now();
        self.write_lookups(move |conn, key| {
            let incoming: Option<bool> = conn
                .query_row("SELECT secret IS NOT NULL FROM hooks WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            match incoming {
                Some(false) => Err(StoreError::Conflict("this hook was created without a secret".into())),
                Some(true) => {
                    let sealed = key.seal(&secret, &hook_context(&id));
                    conn.execute(
                        "UPDATE hooks SET previous_secret = secret, previous_expires_at = ?3, secret = ?2,
                                          updated_at = ?4
                         WHERE id = ?1",
                        params![id.as_str(), sealed, ms(grace_until), ms(now)],
                    )
                    .map_err(backend)?;
                    Ok(())
                }
                None if outgoing::rotate(conn, key, &id, &secret, grace_until, now)? => Ok(()),
                None => Err(not_found("hook", &id)),
            }
        })
        .await
    }

    async fn create_token(&self, token: NewApiToken) -> Result<(), StoreError> {
        self.name_audit_target(&token.token.id);
        self.write(move |conn, _| access::create(conn, &token)).await
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|conn, _| access::list(conn)).await
    }

    async fn token_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        self.read(move |conn, _| access::by_hash(conn, &hash)).await
    }

    async fn revoke_token(&self, id: &str) -> Result<ApiToken, StoreError> {
        let (id, now) = (id.to_owned(), ms(self.now()));
        self.write(move |conn, _| access::revoke(conn, &id, now)).await
    }

    async fn rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
        let hook = hook.clone();
        self.read(move |conn, _| rules::list(conn, &hook)).await
    }

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

    async fn put_rule(&self, command: Rule) -> Result<(), StoreError> {
        self.write_lookups(move |conn, _| rules::put(conn, &command)).await
    }

    async fn delete_rule(&self, hook: &HookId, id: &str) -> Result<(), StoreError> {
        let (hook, id) = (hook.clone(), id.to_owned());
        self.write_lookups(move |conn, _| rules::delete(conn, &hook, &id)).await
    }

    async fn replace_rules(&self, hook: &HookId, list: Vec<Rule>) -> Result<(), StoreError> {
        let hook = hook.clone();
        self.write_lookups(move |conn, _| rules::replace(conn, &hook, &list)).await
    }

    async fn idempotent(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn, master| idempotency::idempotent(conn, master, &key)).await
    }

    async fn save_idempotent(&self, key: &str, response: IdempotentResponse) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |conn, master| idempotency::save_idempotent(conn, master, &key, &response)).await
    }

    fn audited(&self, entry: AuditEntry) -> Arc<dyn Store> {
        Arc::new(Self {
            inner: self.inner.clone(),
            audit: Some(Arc::new(std::sync::Mutex::new(Some(entry)))),
        })
    }

    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |conn, _| access::record(conn, &entry)).await
    }

    async fn audit(&self, limit: usize, cursor: Option<String>) -> Result<Page<AuditEntry>, StoreError> {
        let limit = limit.clamp(1, 1000);
        self.read(move |conn, _| access::query(conn, limit, cursor.as_deref())).await
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

    async fn hooks(&self, agent: Option<&AgentName>) -> Result<Vec<IncomingHook>, StoreError> {
        let agent = agent.cloned();
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM hooks WHERE ?1 IS NULL OR agent = ?1 ORDER BY created_at, id")
                .map_err(backend)?;
            stmt.query_map([agent.as_ref().map(AgentName::as_str)], hook_from_row)
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn update_hook(&self, id: &HookId, patch: HookPatch) -> Result<IncomingHook, StoreError> {
        let id = id.clone();
        let now = ms(self.now());
        self.write_lookups(move |conn, _| {
            let mut h = get_hook(conn, &id)?.ok_or_else(|| not_found("hook", &id))?;
            if let Some(v) = patch.name {
                h.name = v;
            }
            if let Some(v) = patch.enabled {
                h.enabled = v;
            }
            if let Some(v) = patch.rate_limit_per_minute {
                h.rate_limit_per_minute = v;
            }
            if let Some(v) = patch.ip_allowlist {
                h.ip_allowlist = v;
            }
            if let Some(v) = patch.template {
                h.template = v;
            }
            if let Some(v) = patch.events {
                h.events = v;
            }
            if let Some(v) = patch.aggregate_secs {
                h.aggregate_secs = v;
            }
            if let Some(v) = patch.notify_changes {
                h.notify_changes = v;
            }
            if let Some(v) = patch.threads {
                h.threads = v;
            }
            conn.execute(
                "UPDATE hooks SET name = ?2, enabled = ?3, rate_limit_per_minute = ?4, ip_allowlist = ?5,
                                  template = ?6, events = ?7, updated_at = ?8, aggregate_secs = ?9,
                                  notify_changes = ?10, threads = ?11
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    h.name,
                    h.enabled,
                    h.rate_limit_per_minute,
                    json(&h.ip_allowlist),
                    h.template,
                    json(&h.events),
                    now,
                    h.aggregate_secs,
                    h.notify_changes,
                    h.threads,
                ],
            )
            .map_err(backend)?;
            get_hook(conn, &id)?.ok_or_else(|| not_found("hook", &id))
        })
        .await
    }

    async fn delete_hook(&self, id: &HookId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write_lookups(move |conn, _| {
            match conn.execute("DELETE FROM hooks WHERE id = ?1", [id.as_str()]).map_err(backend)? {
                0 => Err(not_found("hook", &id)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
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
                        json(&event.headers),
                        ms(event.received_at),
                    ])
                })
                .map_err(backend)?;
            if inserted == 1 {
                conn.prepare_cached("INSERT INTO event_bodies (seq, body) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![conn.last_insert_rowid(), event.body]))
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

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached(concat!(EVENT_SELECT!(), " WHERE e.id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], |r| Ok(event_from_row(r)?.1)).optional())
                .map_err(backend)
        })
        .await
    }

    async fn events(&self, query: EventQuery) -> Result<Page<Event>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(concat!(
                    EVENT_SELECT!(),
                    " WHERE e.seq < ?1 AND (?2 IS NULL OR e.hook_id = ?2) AND (?3 IS NULL OR e.status = ?3)
                        AND (?5 IS NULL OR e.event_type = ?5 OR substr(e.event_type, 1, length(?5) + 1) = ?5 || '.')
                        AND (?6 IS NULL OR e.received_at >= ?6) AND (?7 IS NULL OR e.received_at < ?7)
                      ORDER BY e.seq DESC LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        before,
                        query.hook_id.as_ref().map(HookId::as_str),
                        query.status.map(EventStatus::as_str),
                        limit + 1,
                        query.event_type,
                        query.since.map(ms),
                        query.until.map(ms),
                    ],
                    event_from_row,
                )
                .and_then(Iterator::collect)
                .map_err(backend)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn claim_events(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (now, until) = (ms(now), ms(now) + lease.as_millis() as i64);
        self.write(move |conn, _| {
            let seqs: Vec<i64> = conn
                .prepare_cached(
                    "UPDATE events SET lease_until = ?2
                     WHERE seq IN (SELECT seq FROM events
                                   WHERE status = 'received' AND (lease_until IS NULL OR lease_until <= ?1)
                                   ORDER BY seq LIMIT ?3)
                     RETURNING seq",
                )
                .and_then(|mut s| s.query_map(params![now, until, limit], |r| r.get(0))?.collect())
                .map_err(backend)?;
            let mut read =
                conn.prepare_cached(concat!(EVENT_SELECT!(), " WHERE e.seq = ?1")).map_err(backend)?;
            let mut events = seqs
                .into_iter()
                .map(|seq| read.query_row([seq], event_from_row))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            // RETURNING gives no order; routing goes oldest first.
            events.sort_by_key(|(seq, _)| *seq);
            Ok(events.into_iter().map(|(_, e)| e).collect())
        })
        .await
    }

    async fn route_events(&self, batch: Vec<RoutedEvent>) -> Result<(), StoreError> {
        let now = ms(self.now());
        self.write(move |conn, _| {
            for routed in &batch {
                let outcomes = (!routed.outcomes.is_empty()).then(|| json(&routed.outcomes));
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
                for update in &routed.subjects {
                    tasks::put_subject(
                        conn,
                        update.hook_id.as_str(),
                        &update.subject,
                        &json(&update.state),
                        now,
                    )?;
                }
                insert_deliveries(conn, &routed.deliveries, now)?;
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
            conn.prepare_cached(
                "SELECT hook_id, ends_at FROM windows WHERE closed = 0 AND ends_at <= ?1 ORDER BY ends_at LIMIT 100",
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

    async fn set_reply(&self, id: &HookId, reply: Option<ReplyConfig>) -> Result<(), StoreError> {
        let id = id.clone();
        let now = ms(self.now());
        self.write(move |conn, key| {
            let sealed = reply.map(|r| {
                let plain =
                    serde_json::json!({"api_url": r.api_url, "email": r.email, "token": r.token.expose()});
                key.seal(&Secret::new(plain.to_string()), &reply_context(&id))
            });
            match conn
                .execute(
                    "UPDATE hooks SET reply = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id.as_str(), sealed, now],
                )
                .map_err(backend)?
            {
                0 => Err(not_found("hook", &id)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn reply(&self, id: &HookId) -> Result<Option<ReplyConfig>, StoreError> {
        let id = id.clone();
        self.read(move |conn, key| Ok(hook_reply(conn, key, &id)?.map(|(_, r)| r))).await
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

    async fn question(&self, id: &str) -> Result<Option<chorus_core::Question>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn, _| tasks::question(conn, &id)).await
    }

    async fn questions(&self, event: &EventId) -> Result<Vec<chorus_core::Question>, StoreError> {
        let event = event.clone();
        self.read(move |conn, _| tasks::questions(conn, event.as_str())).await
    }

    async fn interact(
        &self,
        deliveries: Vec<NewDelivery>,
        asked: Option<chorus_core::Question>,
        answered: Option<(String, String, Timestamp)>,
    ) -> Result<(), StoreError> {
        let now = ms(self.now());
        self.write(move |conn, _| {
            if let Some((id, text, at)) = &answered {
                tasks::answer(conn, id, text, *at)?;
            }
            if let Some(q) = &asked {
                tasks::insert_question(conn, q)?;
            }
            insert_deliveries(conn, &deliveries, now)
        })
        .await
    }

    async fn tasks(&self, query: TaskQuery) -> Result<Page<Task>, StoreError> {
        self.read(move |conn, _| tasks::list(conn, &query)).await
    }

    async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn, _| tasks::get(conn, &id)).await
    }

    async fn finish_task(
        &self,
        id: &str,
        status: TaskStatus,
        result: Option<String>,
        now: Timestamp,
        events: Vec<NewOutgoingEvent>,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Task, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, _| {
            tasks::finish(conn, &id, status, result.as_deref(), now, &events, &deliveries)
        })
        .await
    }

    async fn update_task(
        &self,
        id: &str,
        title: Option<String>,
        body: Option<String>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let id = id.to_owned();
        self.write(move |conn, _| tasks::update(conn, &id, title.as_deref(), body.as_deref(), now)).await
    }

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
        self.claim(filter, params, now, lease, limit).await
    }

    async fn claim_target(
        &self,
        target: &Target,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let params = vec![Value::Text(target_kind(target).as_str().to_owned()), Value::Text(json(target))];
        self.claim("target_kind = ? AND target = ?".to_owned(), params, now, lease, limit).await
    }

    async fn defer_delivery(&self, id: &DeliveryId, until: Timestamp) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE deliveries SET next_attempt_at = ?2, lease_until = NULL, pack = NULL
                 WHERE id = ?1 AND status = 'pending'",
                params![id.as_str(), ms(until)],
            )
            .map_err(backend)?;
            Ok(())
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

    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, _| crate::subjects::cursor(conn, &name)).await
    }

    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        let now = ms(self.now());
        self.write(move |conn, _| crate::subjects::set_cursor(conn, &name, &value, now)).await
    }

    async fn subject_message(&self, target: &Target, subject: &str) -> Result<Option<String>, StoreError> {
        let (target, subject) = (json(target), subject.to_owned());
        self.read(move |conn, _| crate::subjects::find(conn, &target, &subject)).await
    }

    async fn record_attempts(&self, attempts: Vec<NewAttempt>) -> Result<(), StoreError> {
        let now = ms(self.now());
        self.write(move |conn, _| {
            let mut insert = conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO attempts (delivery_id, number, started_at, duration_ms, status_code,
                                                      error, response_excerpt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?;
            let mut update = conn
                .prepare_cached(
                    "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = NULL,
                                           last_error = ?5, updated_at = ?6, pack = NULL
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
            }
            Ok(())
        })
        .await
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached("SELECT * FROM deliveries WHERE id = ?1")
                .and_then(|mut s| s.query_row([id.as_str()], delivery_from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn deliveries(&self, query: DeliveryQuery) -> Result<Page<Delivery>, StoreError> {
        let before = parse_cursor(query.cursor.as_deref())?;
        let limit = query.limit.clamp(1, 1000);
        self.read(move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT * FROM deliveries WHERE seq < ?1 AND (?2 IS NULL OR hook_id = ?2)
                       AND (?3 IS NULL OR event_id = ?3) AND (?4 IS NULL OR status = ?4)
                     ORDER BY seq DESC LIMIT ?5",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        before,
                        query.hook_id.as_ref().map(HookId::as_str),
                        query.event_id.as_ref().map(EventId::as_str),
                        query.status.map(DeliveryStatus::as_str),
                        limit + 1
                    ],
                    |r| Ok((r.get("seq")?, delivery_from_row(r)?)),
                )
                .and_then(Iterator::collect)
                .map_err(backend)?;
            Ok(page(rows, limit))
        })
        .await
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| {
            conn.prepare_cached("SELECT * FROM attempts WHERE delivery_id = ?1 ORDER BY number")
                .and_then(|mut s| {
                    s.query_map([id.as_str()], |r| {
                        Ok(Attempt {
                            delivery_id: parse_col(r, "delivery_id")?,
                            number: r.get("number")?,
                            started_at: ts(r.get("started_at")?),
                            duration_ms: r.get::<_, i64>("duration_ms")? as u64,
                            status_code: r.get("status_code")?,
                            error: r.get("error")?,
                            response_excerpt: r.get("response_excerpt")?,
                        })
                    })?
                    .collect()
                })
                .map_err(backend)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.read(|conn, _| {
            let mut counts = DeliveryCounts::default();
            let mut stmt = conn
                .prepare_cached("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
                .map_err(backend)?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(backend)?;
            for row in rows {
                let (status, n) = row.map_err(backend)?;
                match DeliveryStatus::parse(&status) {
                    Some(DeliveryStatus::Pending) => counts.pending = n as u64,
                    Some(DeliveryStatus::Succeeded) => counts.succeeded = n as u64,
                    Some(DeliveryStatus::Failed) => counts.failed = n as u64,
                    None => {}
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn create_outgoing(
        &self,
        hook: OutgoingHook,
        secret: Secret,
        auth: OutgoingAuth,
    ) -> Result<(), StoreError> {
        self.name_audit_target(hook.id.as_str());
        self.write(move |conn, key| outgoing::create(conn, key, &hook, &secret, &auth)).await
    }

    async fn outgoing(&self, id: &HookId) -> Result<Option<OutgoingHook>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| outgoing::get(conn, &id)).await
    }

    async fn outgoing_hooks(&self, agent: Option<&AgentName>) -> Result<Vec<OutgoingHook>, StoreError> {
        let agent = agent.cloned();
        self.read(move |conn, _| outgoing::list(conn, agent.as_ref())).await
    }

    async fn update_outgoing(&self, id: &HookId, patch: OutgoingPatch) -> Result<OutgoingHook, StoreError> {
        let (id, now) = (id.clone(), self.now());
        self.write(move |conn, key| outgoing::update(conn, key, &id, patch, now)).await
    }

    async fn delete_outgoing(&self, id: &HookId) -> Result<(), StoreError> {
        let (id, now) = (id.clone(), self.now());
        self.write(move |conn, _| outgoing::delete(conn, &id, now)).await
    }

    async fn note_outcome(&self, id: &HookId, success: bool) -> Result<u32, StoreError> {
        let id = id.clone();
        self.write(move |conn, _| outgoing::note_outcome(conn, &id, success)).await
    }

    async fn emit(&self, event: NewOutgoingEvent) -> Result<Vec<DeliveryId>, StoreError> {
        self.write(move |conn, _| outgoing::emit(conn, &event)).await
    }

    async fn emit_to(&self, event: NewOutgoingEvent, hook: &HookId) -> Result<DeliveryId, StoreError> {
        let hook = hook.clone();
        self.write(move |conn, _| outgoing::emit_to(conn, &event, &hook)).await
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let id = id.clone();
        self.write(move |conn, _| outgoing::retry(conn, &id, now)).await
    }

    async fn recover(&self, hook: &HookId, since: Timestamp, now: Timestamp) -> Result<u64, StoreError> {
        let hook = hook.clone();
        self.write(move |conn, _| outgoing::recover(conn, &hook, since, now)).await
    }

    async fn hook_stats(&self, hook: &HookId, now: Timestamp) -> Result<HookStats, StoreError> {
        let hook = hook.clone();
        self.read(move |conn, _| outgoing::stats(conn, &hook, now)).await
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |conn, _| {
            Ok(outgoing::purge(conn, before)?
                + crate::workflows::purge(conn, before)?
                + crate::subjects::purge(conn, before)?)
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
                "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM deliveries
                 WHERE status = 'pending' AND target_kind IN ({marks}) AND {NOT_HELD}"
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
