#![doc = include_str!("../README.md")]

mod access;
mod cache;
mod commands;
mod crypto;
mod outgoing;
mod schema;
mod sqlite;
mod tasks;
mod writer;

pub use crypto::{KeyError, MasterKey};
pub use sqlite::{SqliteStore, StoreOptions};
