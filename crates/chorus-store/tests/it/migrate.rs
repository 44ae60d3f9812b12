//! `migrate_sqlite_to_postgres`: a team's data moves whole, secrets still
//! sealed, and a target that is not empty is refused untouched.

use std::sync::Arc;

use chorus_core::{
    Action, DeliveryId, DeliveryQuery, EventQuery, EventStatus, IngestOutcome, ManualClock, NewAgent,
    NewApiToken, NewDelivery, RoutedEvent, Rule, Secret, SignatureScheme, Target,
};
use chorus_core::{IngressStore as _, ManagementStore as _, RoutingStore as _};
use chorus_store::{MasterKey, MigrateError, PostgresStore, SqliteStore, migrate_sqlite_to_postgres};

use crate::support::{NowTs as _, TestStore, event, hook, key, name};

/// A fresh schema on the test server, as a URL; `None` without one.
async fn target() -> Option<(String, crate::support::PgSchema)> {
    let url = std::env::var("CHORUS_TEST_POSTGRES_URL").ok()?;
    let schema = crate::support::PgSchema::create(&url).await;
    Some((schema.url(), schema))
}

async fn fill(store: &SqliteStore, now: jiff::Timestamp) -> (chorus_core::IncomingHook, Secret) {
    store
        .create_agent(NewAgent {
            name: name("builder"),
            channel_id: Some("123".into()),
            discord_webhook_url: Some(Secret::new("https://discord.com/api/webhooks/1/tok")),
            enabled: true,
        })
        .await
        .unwrap();
    let h = hook("builder", now);
    let secret = Secret::generate();
    let rule = Rule {
        id: "cmd_1".into(),
        hook_id: h.id.clone(),
        trigger: "push".into(),
        action: Action::Notify,
        agent: None,
        template: None,
        conditions: serde_json::Map::new(),
        url: None,
        priority: 3,
        stop: true,
        reply: false,
        signature: SignatureScheme::Chorus,
        created_at: now,
    };
    store.create_hook_with_rules(h.clone(), Some(secret.clone()), vec![rule]).await.unwrap();
    for i in 0..5 {
        let IngestOutcome::Stored(id) = store.ingest(event(&h, Some(&format!("m{i}")), now)).await.unwrap()
        else {
            panic!("stored")
        };
        store
            .route_events(vec![RoutedEvent {
                deliveries: vec![NewDelivery {
                    id: DeliveryId::generate(),
                    event_id: Some(id.clone()),
                    hook_id: h.id.clone(),
                    target: Target::DiscordChannel { channel_id: "123".into() },
                    payload: serde_json::json!({"i": i}),
                    due_at: now,
                }],
                ..RoutedEvent::bare(id, EventStatus::Routed)
            }])
            .await
            .unwrap();
    }
    store
        .create_token(NewApiToken {
            token: chorus_core::ApiToken {
                id: "tok_1".into(),
                name: "ci".into(),
                scope: chorus_core::TokenScope::Read,
                created_at: now,
                revoked_at: None,
            },
            hash: [9; 32],
        })
        .await
        .unwrap();
    (h, secret)
}

pub(crate) async fn a_team_moves_whole_with_its_secrets_sealed() {
    let Some((url, schema)) = target().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let path = dir.path().join("chorus.db");
    let sqlite = SqliteStore::open(&path, key(), clock.clone()).unwrap();
    let (h, secret) = fill(&sqlite, clock.now_ts()).await;
    let events_before =
        sqlite.events(EventQuery { limit: 100, ..EventQuery::default() }).await.unwrap().items;
    drop(sqlite);

    let report = migrate_sqlite_to_postgres(&path, &url, key(), clock.clone()).await.unwrap();
    let rows = |t: &str| report.tables.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!((rows("agents"), rows("hooks"), rows("events"), rows("deliveries")), (1, 1, 5, 5));

    let pg: Arc<dyn TestStore> = Arc::new(PostgresStore::open(&url, key(), clock.clone()).await.unwrap());
    let (moved, secrets) = pg.hook_with_secrets(&h.id).await.unwrap().unwrap();
    assert_eq!(moved, h);
    assert_eq!(secrets, vec![secret.clone()]);
    assert_eq!(
        pg.agent(&name("builder")).await.unwrap().unwrap().discord_webhook_url.unwrap().expose(),
        "https://discord.com/api/webhooks/1/tok"
    );
    assert_eq!(pg.rules(&h.id).await.unwrap()[0].priority, 3);
    let events = pg.events(EventQuery { limit: 100, ..EventQuery::default() }).await.unwrap().items;
    assert_eq!(events, events_before, "events, bodies and their order");
    let page = pg.deliveries(DeliveryQuery { limit: 2, ..DeliveryQuery::default() }).await.unwrap();
    assert_eq!(page.items.len(), 2, "pages and cursors work on the moved rows");
    assert!(pg.token_by_hash([9; 32]).await.unwrap().is_some());
    schema.assert_nowhere(secret.expose().as_bytes()).await;

    // New rows continue after the moved ones.
    pg.ingest(event(&h, Some("after"), clock.now_ts())).await.unwrap();
    let newest = pg.events(EventQuery { limit: 1, ..EventQuery::default() }).await.unwrap().items;
    assert_eq!(newest[0].delivery_key.as_deref(), Some("after"));

    // A second migration into the same database is refused, untouched.
    let err = migrate_sqlite_to_postgres(&path, &url, key(), clock.clone()).await.unwrap_err();
    assert!(matches!(err, MigrateError::NotEmpty { .. }), "{err}");
    assert_eq!(pg.events(EventQuery { limit: 100, ..EventQuery::default() }).await.unwrap().items.len(), 6);
}

pub(crate) async fn a_wrong_key_or_a_busy_source_is_refused_before_anything_is_written() {
    let Some((url, schema)) = target().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let path = dir.path().join("chorus.db");
    let sqlite = SqliteStore::open(&path, key(), clock.clone()).unwrap();
    fill(&sqlite, clock.now_ts()).await;
    // A running server holds the database.
    let err = migrate_sqlite_to_postgres(&path, &url, key(), clock.clone()).await.unwrap_err();
    assert!(matches!(err, MigrateError::Source { .. }), "{err}");
    drop(sqlite);
    let other = MasterKey::from_bytes(&[1; 32]).unwrap();
    let err = migrate_sqlite_to_postgres(&path, &url, other, clock.clone()).await.unwrap_err();
    assert!(matches!(err, MigrateError::Key), "{err}");
    assert!(schema.is_empty().await, "nothing was written");
}
