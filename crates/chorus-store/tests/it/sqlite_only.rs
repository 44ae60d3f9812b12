//! What only the SQLite store promises: one process per database file,
//! and a reopened file releases the leases of the process that died.

use std::time::Duration;

use chorus_core::{IngressStore as _, ManagementStore as _, RoutingStore as _, StoreError};
use chorus_store::SqliteStore;

use crate::support::{NowTs as _, event, hook, key, name};

struct Sqlite {
    _dir: tempfile::TempDir,
    clock: std::sync::Arc<chorus_core::ManualClock>,
    store: SqliteStore,
}

fn open() -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(chorus_core::ManualClock::at_unix(1_700_000_000));
    let store = SqliteStore::open(dir.path().join("chorus.db"), key(), clock.clone()).unwrap();
    Sqlite { _dir: dir, clock, store }
}

async fn agent(store: &SqliteStore, n: &str) {
    store
        .create_agent(chorus_core::NewAgent {
            name: name(n),
            channel_id: Some("123".into()),
            discord_webhook_url: None,
            enabled: true,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn one_process_per_database_and_leases_released_on_reopen() {
    let f = open();
    agent(&f.store, "builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    f.store.ingest(event(&h, None, f.clock.now_ts())).await.unwrap();
    let claimed = f.store.claim_events(f.clock.now_ts(), Duration::from_secs(600), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let path = f.store.path().to_path_buf();
    let second = SqliteStore::open(&path, key(), f.clock.clone());
    assert!(matches!(second, Err(StoreError::Unavailable(_))), "a second opener must be refused");
    drop(f.store);
    // The claimer is gone: its lease does not hold the event back.
    let store = SqliteStore::open(&path, key(), f.clock.clone()).unwrap();
    assert_eq!(store.claim_events(f.clock.now_ts(), Duration::from_secs(600), 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn data_survives_reopen() {
    let f = open();
    agent(&f.store, "builder").await;
    let path = f.store.path().to_path_buf();
    drop(f.store);
    let store = SqliteStore::open(&path, key(), f.clock.clone()).unwrap();
    assert!(store.agent(&name("builder")).await.unwrap().is_some());
}
