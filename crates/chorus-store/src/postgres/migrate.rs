//! Moving a team's SQLite database into PostgreSQL: every table, row for
//! row, in one PostgreSQL transaction, then counted on both sides.
//!
//! Sealed values (hook secrets, reply credentials, Discord webhook URLs,
//! kept answers) are copied as they are: they stay sealed under the same
//! master key, which every replica must then be given.

use std::{path::Path, sync::Arc};

use chorus_core::{Clock, IngressStore as _, ManagementStore as _, StoreError};
use rusqlite::{OpenFlags, types::ValueRef};
use tokio_postgres::{NoTls, types::ToSql};

use super::{PostgresOpenError, PostgresStore};
use crate::{MasterKey, SqliteStore};

/// Tables in the order they are copied.
const TABLES: &[&str] = &[
    "agents",
    "hooks",
    "hook_commands",
    "events",
    "deliveries",
    "attempts",
    "outgoing_hooks",
    "outgoing_events",
    "api_tokens",
    "audit",
    "idempotency",
    "tasks",
    "subjects",
    "questions",
    "workflows",
    "runs",
    "run_steps",
    "approvals",
    "windows",
    "window_events",
    "subject_messages",
    "cursors",
];

/// Leases belong to the process that stopped; the replicas start afresh.
const CLEARED: &[&str] = &["lease_until", "lease_holder"];

/// A migration that could not be done; nothing was written to the target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The SQLite database could not be opened (in use by a running
    /// Chorus, say).
    #[error("opening the SQLite database {path}")]
    Source {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The PostgreSQL database could not be opened.
    #[error(transparent)]
    Target(#[from] PostgresOpenError),
    /// The target already holds Chorus data.
    #[error("the target database is not empty ({table} has {rows} rows): migrate into an empty database")]
    NotEmpty {
        /// A table with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// Reading, writing or checking failed.
    #[error("copying {table}")]
    Copy {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// After the copy, a table's rows did not match.
    #[error("{table}: {source_rows} rows in SQLite but {target_rows} in PostgreSQL")]
    Count {
        /// The table.
        table: String,
        /// Rows read.
        source_rows: i64,
        /// Rows found after the copy.
        target_rows: i64,
    },
    /// The master key does not open the copied secrets.
    #[error(
        "the master key does not open the copied secrets: give the key the SQLite database was sealed with"
    )]
    Key,
}

/// What was moved: rows per table, in copy order.
#[derive(Debug, Clone, Default)]
pub struct MigrationReport {
    /// `(table, rows)`.
    pub tables: Vec<(String, i64)>,
}

fn copy_error(table: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> MigrateError + '_ {
    move |source| MigrateError::Copy { table: table.to_owned(), source }
}

/// Copy the SQLite database at `from` into the empty PostgreSQL database
/// at `to`, after opening each hook's secrets with `key`, then count
/// every table on both sides. The SQLite database must not be in use: stop the
/// server first.
pub async fn migrate_sqlite_to_postgres(
    from: &Path,
    to: &str,
    key: MasterKey,
    clock: Arc<dyn Clock>,
) -> Result<MigrationReport, MigrateError> {
    // Opening it brings its schema up to date and holds its lock: no
    // server writes to it meanwhile.
    let source = SqliteStore::open(from, key.clone(), clock.clone())
        .map_err(|source| MigrateError::Source { path: from.display().to_string(), source })?;
    // Every secret opens under the key the replicas will run with: checked
    // before anything is written.
    for hook in source.hooks(None).await.map_err(|e| copy_error("hooks")(Box::new(e)))? {
        match source.hook_with_secrets(&hook.id).await {
            Err(StoreError::Unseal) => return Err(MigrateError::Key),
            Err(e) => return Err(copy_error("hooks")(Box::new(e))),
            Ok(_) => {}
        }
    }
    refuse_non_empty(to).await?;
    let target = PostgresStore::open(to, key, clock).await?;
    let reader =
        rusqlite::Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
            MigrateError::Source {
                path: from.display().to_string(),
                source: StoreError::Backend(Box::new(e)),
            }
        })?;
    let mut client = target.client().await.map_err(|e| copy_error("connection")(Box::new(e)))?;
    let tx = client.transaction().await.map_err(|e| copy_error("transaction")(Box::new(e)))?;
    let mut report = MigrationReport::default();
    for table in TABLES {
        let rows = copy_table(&reader, &tx, table).await?;
        report.tables.push(((*table).to_owned(), rows));
    }
    for (table, rows) in &report.tables {
        let target_rows: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .map_err(|e| copy_error(table)(Box::new(e)))?
            .get(0);
        if target_rows != *rows {
            return Err(MigrateError::Count { table: table.clone(), source_rows: *rows, target_rows });
        }
    }
    tx.commit().await.map_err(|e| copy_error("commit")(Box::new(e)))?;
    drop(client);
    drop(source);
    Ok(report)
}

/// Refuse a target that holds rows in any of Chorus's tables.
async fn refuse_non_empty(to: &str) -> Result<(), MigrateError> {
    let config: tokio_postgres::Config = to.parse().map_err(PostgresOpenError::Url)?;
    let (client, connection) = config.connect(NoTls).await.map_err(|e| PostgresOpenError::Connect {
        host: super::describe_host(&config),
        source: Box::new(e),
    })?;
    let task = tokio::spawn(connection);
    let exists: bool = client
        .query_one("SELECT to_regclass('chorus_schema') IS NOT NULL", &[])
        .await
        .map_err(|e| copy_error("chorus_schema")(Box::new(e)))?
        .get(0);
    if exists {
        for table in TABLES {
            let present: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
                .await
                .map_err(|e| copy_error(table)(Box::new(e)))?
                .get(0);
            if !present {
                continue;
            }
            let rows: i64 = client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
                .map_err(|e| copy_error(table)(Box::new(e)))?
                .get(0);
            if rows > 0 {
                task.abort();
                return Err(MigrateError::NotEmpty { table: (*table).to_owned(), rows });
            }
        }
    }
    task.abort();
    Ok(())
}

/// The columns both databases have, with PostgreSQL's type of each.
async fn shared_columns(
    reader: &rusqlite::Connection,
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
) -> Result<Vec<(String, String)>, MigrateError> {
    let sqlite: Vec<String> = reader
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| copy_error(table)(Box::new(e)))?;
    let pg = tx
        .query(
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(|e| copy_error(table)(Box::new(e)))?;
    Ok(pg
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|(name, _)| {
            !CLEARED.contains(&name.as_str())
                && (sqlite.contains(name) || (table == "events" && name == "body"))
        })
        .collect())
}

/// A SQLite value as the PostgreSQL column of type `ty` takes it.
fn convert(value: ValueRef<'_>, ty: &str) -> Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match (value, ty) {
        (ValueRef::Null, "boolean") => Box::new(None::<bool>),
        (ValueRef::Null, "bigint") => Box::new(None::<i64>),
        (ValueRef::Null, "integer") => Box::new(None::<i32>),
        (ValueRef::Null, "double precision") => Box::new(None::<f64>),
        (ValueRef::Null, "bytea") => Box::new(None::<Vec<u8>>),
        (ValueRef::Null, _) => Box::new(None::<String>),
        (ValueRef::Integer(i), "boolean") => Box::new(i != 0),
        (ValueRef::Integer(i), "bigint") => Box::new(i),
        (ValueRef::Integer(i), "integer") => Box::new(i32::try_from(i).map_err(|e| e.to_string())?),
        (ValueRef::Integer(i), "double precision") => Box::new(i as f64),
        (ValueRef::Real(f), "double precision") => Box::new(f),
        (ValueRef::Text(t), "text") => Box::new(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), "bytea") => Box::new(b.to_vec()),
        (ValueRef::Text(t), "bytea") => Box::new(t.to_vec()),
        (other, ty) => return Err(format!("a {:?} value for a {ty} column", other.data_type())),
    })
}

/// An event's body as sent, from SQLite's stored form at column `i` (its
/// encoding in the row's last column).
fn event_body(
    row: &rusqlite::Row<'_>,
    i: usize,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let stored: Vec<u8> = row.get(i)?;
    let encoding: i64 = row.get(row.as_ref().column_count() - 1)?;
    crate::bodies::open(stored, encoding).ok_or_else(|| "body: not what Chorus stored".into())
}

async fn copy_table(
    reader: &rusqlite::Connection,
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
) -> Result<i64, MigrateError> {
    let columns = shared_columns(reader, tx, table).await?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    // Event bodies live in their own table in SQLite, compressed; their
    // encoding comes last, after the shared columns.
    let events = table == "events";
    let select = if events {
        let list: Vec<String> =
            names.iter().map(|n| if *n == "body" { "b.body".to_owned() } else { format!("e.{n}") }).collect();
        format!(
            "SELECT {}, b.encoding FROM events e JOIN event_bodies b ON b.seq = e.seq ORDER BY e.seq",
            list.join(", ")
        )
    } else {
        format!("SELECT {} FROM {table}", names.join(", "))
    };
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
            names.join(", "),
            marks.join(", ")
        ))
        .await
        .map_err(|e| copy_error(table)(Box::new(e)))?;
    let mut stmt = reader.prepare(&select).map_err(|e| copy_error(table)(Box::new(e)))?;
    let mut rows = stmt.query([]).map_err(|e| copy_error(table)(Box::new(e)))?;
    let mut copied = 0;
    while let Some(row) = rows.next().map_err(|e| copy_error(table)(Box::new(e)))? {
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(columns.len());
        for (i, (name, ty)) in columns.iter().enumerate() {
            if events && name == "body" {
                values.push(Box::new(event_body(row, i).map_err(copy_error(table))?));
                continue;
            }
            let value = row.get_ref(i).map_err(|e| copy_error(table)(Box::new(e)))?;
            values.push(convert(value, ty).map_err(|e| copy_error(table)(format!("{name}: {e}").into()))?);
        }
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
        tx.execute(&insert, &params).await.map_err(|e| copy_error(table)(Box::new(e)))?;
        copied += 1;
    }
    // Rows keep their `seq` (cursors and order); new rows continue after them.
    if names.contains(&"seq") {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), GREATEST(MAX(seq), 1)) FROM {table}"
            ),
            &[],
        )
        .await
        .map_err(|e| copy_error(table)(Box::new(e)))?;
    }
    Ok(copied)
}
