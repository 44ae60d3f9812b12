//! `chorus-hookd migrate`: a team on SQLite moves to PostgreSQL, and its
//! senders' secrets keep working; a non-empty or unreachable target is
//! refused with a clear message.

use std::{path::Path, time::Duration};

use chorus_testkit::Process;
use serde_json::json;

use crate::{
    replicas::Schema,
    support::{TOKEN, api, exe, init, post_signed, setup},
};

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn migrate(data: &Path, to: &str) -> Ran {
    let mut cmd = std::process::Command::new(exe());
    cmd.env_clear().env("CHORUS_DATA_DIR", data).args(["migrate", "--to", to]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_sqlite_team_moves_to_postgres_and_its_senders_keep_working() {
    let Ok(server) = std::env::var("CHORUS_TEST_POSTGRES_URL") else {
        eprintln!("CHORUS_TEST_POSTGRES_URL is not set: skipping the migration test");
        return;
    };
    init();
    let data = tempfile::tempdir().unwrap();
    let env = [("CHORUS_API_TOKEN", TOKEN.to_owned())];
    let mut sqlite = Process::start(exe(), data.path(), &env).await;
    let http = reqwest::Client::new();
    let (hook_id, url, secret) =
        setup(&http, &sqlite.base, json!({"agent": "builder", "source": "chorus"})).await;
    // Large enough that SQLite keeps it compressed; PostgreSQL gets it as sent.
    let sent = json!({"title": "before the move", "lines": vec!["the build failed again"; 200]});
    let event = post_signed(&http, &url, &secret, &sent).await;
    assert!(sqlite.terminate(Duration::from_secs(30)).await.success());

    let schema = Schema::create(&server).await;
    let ran = migrate(data.path(), &schema.url()).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let events_line = ran.stdout.lines().find(|l| l.starts_with("events ")).unwrap();
    assert!(events_line.ends_with(" 1"), "{}", ran.stdout);

    // The same master key (the data directory's), now on PostgreSQL.
    let env = [("CHORUS_API_TOKEN", TOKEN.to_owned()), ("CHORUS_DATABASE_URL", schema.url())];
    let pg = Process::start(exe(), data.path(), &env).await;
    let hook = api(&http, &pg.base, reqwest::Method::GET, &format!("/api/webhooks/{hook_id}"), None).await;
    assert_eq!(hook["agent"], "builder");
    let logged =
        api(&http, &pg.base, reqwest::Method::GET, &format!("/api/webhooks/{hook_id}/events"), None).await;
    assert_eq!(logged["items"][0]["id"], event.as_str());
    assert_eq!(logged["items"][0]["size"], serde_json::to_vec(&sent).unwrap().len());
    // The sender's secret moved sealed and still verifies.
    let moved_url = url.replace(&sqlite.base, &pg.base);
    post_signed(&http, &moved_url, &secret, &json!({"title": "after the move"})).await;
    drop(pg);

    // Again: the target holds data now, and nothing is written to it.
    let again = migrate(data.path(), &schema.url()).await;
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
}

#[tokio::test]
async fn an_unreachable_target_is_named() {
    init();
    let data = tempfile::tempdir().unwrap();
    let env = [("CHORUS_API_TOKEN", TOKEN.to_owned())];
    let mut sqlite = Process::start(exe(), data.path(), &env).await;
    // Stopped the moment it is up: its signal handler is in place by then.
    assert!(sqlite.terminate(Duration::from_secs(30)).await.success());
    let ran = migrate(data.path(), "postgres://chorus@127.0.0.1:1/chorus").await;
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}
