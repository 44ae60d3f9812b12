#![doc = include_str!("../README.md")]

mod access;
mod bodies;
mod cache;
mod crypto;
mod delivery;
mod emission;
mod idempotency;
mod ingress;
mod management;
mod outgoing;
#[cfg(feature = "postgres")]
mod postgres;
mod routing;
mod rules;
mod schema;
mod sqlite;
mod subjects;
mod tasks;
mod workflows;
mod writer;

pub use crypto::{KeyError, MasterKey};
#[cfg(feature = "postgres")]
pub use postgres::{
    MigrateError, MigrationReport, PostgresOpenError, PostgresOptions, PostgresStore,
    migrate_sqlite_to_postgres,
};
pub use sqlite::{SqliteStore, StoreOptions};
