//! What every storage test starts from: a fresh store of each backend, a
//! clock the test moves, and rows to put in it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use chorus_core::{
    AgentName, EventId, HookId, IncomingHook, ManualClock, NewAgent, NewEvent, Source, Store, WorkflowStore,
};
use chorus_store::{MasterKey, SqliteStore};
use jiff::Timestamp;

/// Both traits a backend implements, as one object.
pub(crate) trait TestStore: Store + WorkflowStore {}
impl<T: Store + WorkflowStore> TestStore for T {}

pub(crate) fn key() -> MasterKey {
    MasterKey::from_bytes(&[42u8; 32]).unwrap()
}

pub(crate) fn name(s: &str) -> AgentName {
    s.parse().unwrap()
}

pub(crate) trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        chorus_core::Clock::now(self)
    }
}

pub(crate) fn hook(agent: &str, now: Timestamp) -> IncomingHook {
    IncomingHook {
        id: HookId::generate(),
        slug: None,
        agent: name(agent),
        name: "gh".into(),
        source: Source::Github,
        generic: None,
        enabled: true,
        rate_limit_per_minute: 60,
        ip_allowlist: vec![],
        template: None,
        events: vec![],
        aggregate_secs: None,
        notify_changes: false,
        threads: false,
        created_at: now,
        created_by: "test".into(),
        updated_at: now,
    }
}

pub(crate) fn event(hook: &IncomingHook, key: Option<&str>, now: Timestamp) -> NewEvent {
    NewEvent {
        id: EventId::generate(),
        hook_id: hook.id.clone(),
        agent: hook.agent.clone(),
        source: hook.source,
        event_type: "push".into(),
        delivery_key: key.map(str::to_owned),
        headers: vec![("x-github-event".into(), "push".into())],
        body: br#"{"ref":"refs/heads/main"}"#.to_vec(),
        received_at: now,
    }
}

/// A fresh, empty store and the clock it reads.
pub(crate) struct Fixture {
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) store: Arc<dyn TestStore>,
    backend: Backend,
}

enum Backend {
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(pg::Schema),
}

impl Fixture {
    /// A SQLite database in a temporary directory.
    pub(crate) fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let store = SqliteStore::open(dir.path().join("chorus.db"), key(), clock.clone()).unwrap();
        Self { clock, store: Arc::new(store), backend: Backend::Sqlite(dir) }
    }

    /// A schema of its own on the server `CHORUS_TEST_POSTGRES_URL` names;
    /// `None` (with a notice) when it names none. A URL that is set but
    /// cannot be used fails the test: CI sets it, so CI never skips.
    pub(crate) async fn postgres() -> Option<Self> {
        #[cfg(feature = "postgres")]
        {
            let Ok(url) = std::env::var("CHORUS_TEST_POSTGRES_URL") else {
                eprintln!("CHORUS_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test");
                return None;
            };
            let schema = pg::Schema::create(&url).await;
            let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
            let store = schema.open(key(), clock.clone()).await;
            Some(Self { clock, store, backend: Backend::Postgres(schema) })
        }
        #[cfg(not(feature = "postgres"))]
        {
            eprintln!("built without the postgres feature: skipping the PostgreSQL run of this test");
            None
        }
    }

    /// The same data through a new store opened with `key`, as after a
    /// restart: this one is closed first.
    pub(crate) async fn reopen(self, key: MasterKey) -> Self {
        let Self { clock, store, backend } = self;
        drop(store);
        let store: Arc<dyn TestStore> = match &backend {
            Backend::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path().join("chorus.db"), key, clock.clone()).unwrap())
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(schema) => schema.open(key, clock.clone()).await,
        };
        Self { clock, store, backend }
    }

    /// Fails if `needle` is stored anywhere in clear: in the database's
    /// files, or in any column of any table.
    pub(crate) async fn assert_nowhere(&self, needle: &[u8]) {
        match &self.backend {
            Backend::Sqlite(dir) => {
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
                    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "stored in clear on disk");
                }
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(schema) => schema.assert_nowhere(needle).await,
        }
    }

    /// A second process on the same data (PostgreSQL only: a replica).
    #[cfg(feature = "postgres")]
    pub(crate) async fn replica(&self) -> Arc<dyn TestStore> {
        match &self.backend {
            Backend::Postgres(schema) => schema.open(key(), self.clock.clone()).await,
            Backend::Sqlite(_) => panic!("one process serves a SQLite database"),
        }
    }

    /// Create the agent `n`, posting to channel 123.
    pub(crate) async fn agent(&self, n: &str) {
        self.store
            .create_agent(NewAgent {
                name: name(n),
                channel_id: Some("123".into()),
                discord_webhook_url: None,
                enabled: true,
            })
            .await
            .unwrap();
    }
}

#[cfg(feature = "postgres")]
pub(crate) use pg::Schema as PgSchema;

#[cfg(feature = "postgres")]
mod pg {
    use super::{Arc, AtomicU64, ManualClock, MasterKey, Ordering, TestStore};
    use chorus_store::PostgresStore;

    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// A schema made for one test and dropped after it.
    pub(crate) struct Schema {
        server: String,
        name: String,
    }

    async fn connect(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("CHORUS_TEST_POSTGRES_URL is set but unusable: {e}"));
        tokio::spawn(connection);
        client
    }

    impl Schema {
        pub(crate) async fn create(server: &str) -> Self {
            // Random as well as counted: schemas left by a killed run
            // cannot collide with this one's.
            let random: String = chorus_core::random_token("", 8)
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { 'x' })
                .collect();
            let name = format!(
                "chorus_test_{random}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            connect(server).await.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
            Self { server: server.to_owned(), name }
        }

        pub(crate) fn url(&self) -> String {
            let join = if self.server.contains('?') { '&' } else { '?' };
            format!("{}{join}options=-csearch_path%3D{}", self.server, self.name)
        }

        pub(super) async fn open(&self, key: MasterKey, clock: Arc<ManualClock>) -> Arc<dyn TestStore> {
            Arc::new(PostgresStore::open(&self.url(), key, clock).await.unwrap())
        }

        /// Whether the schema holds no table at all.
        pub(crate) async fn is_empty(&self) -> bool {
            let client = connect(&self.server).await;
            let tables: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
                    &[&self.name],
                )
                .await
                .unwrap()
                .get(0);
            tables == 0
        }

        pub(crate) async fn assert_nowhere(&self, needle: &[u8]) {
            let client = connect(&self.url()).await;
            let hex = needle.iter().fold(String::new(), |mut out, b| {
                use std::fmt::Write as _;
                let _ = write!(out, "{b:02x}");
                out
            });
            let tables = client
                .query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    &[&self.name],
                )
                .await
                .unwrap();
            assert!(!tables.is_empty());
            let text = String::from_utf8_lossy(needle);
            for t in tables {
                let table: String = t.get(0);
                for row in client.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap() {
                    let shown: String = row.get(0);
                    assert!(!shown.contains(text.as_ref()), "stored in clear in {table}: {shown}");
                    assert!(!shown.contains(&hex), "stored in clear (as bytes) in {table}");
                }
            }
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let (server, name) = (self.server.clone(), self.name.clone());
            // Dropped from inside the test's runtime: a thread of its own
            // runs the cleanup to completion.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok((client, connection)) =
                        tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(connection);
                        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
                    }
                });
            });
            let _ = done.join();
        }
    }
}
