#![doc = include_str!("../README.md")]

mod access;
mod cache;
mod crypto;
mod idempotency;
mod outgoing;
mod rules;
mod schema;
mod sqlite;
mod subjects;
mod tasks;
mod workflows;
mod writer;

pub use crypto::{KeyError, MasterKey};
pub use sqlite::{SqliteStore, StoreOptions};
