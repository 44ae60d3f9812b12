//! Migrations, applied in order; `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE agents (
    name                TEXT PRIMARY KEY,
    channel_id          TEXT,
    discord_webhook_url BLOB,
    enabled             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE hooks (
    id                    TEXT PRIMARY KEY,
    agent                 TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
    kind                  TEXT NOT NULL DEFAULT 'incoming',
    name                  TEXT NOT NULL,
    source                TEXT NOT NULL,
    generic               TEXT,
    enabled               INTEGER NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    ip_allowlist          TEXT NOT NULL,
    template              TEXT,
    events                TEXT NOT NULL,
    secret                BLOB,
    previous_secret       BLOB,
    previous_expires_at   INTEGER,
    created_at            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX hooks_agent ON hooks(agent);

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    hook_id      TEXT NOT NULL,
    agent        TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    delivery_key TEXT,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    status       TEXT NOT NULL,
    lease_until  INTEGER
) STRICT;
CREATE UNIQUE INDEX events_dedupe ON events(hook_id, delivery_key) WHERE delivery_key IS NOT NULL;
CREATE INDEX events_received ON events(seq) WHERE status = 'received';
CREATE INDEX events_hook ON events(hook_id, seq);

CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event_id        TEXT,
    hook_id         TEXT NOT NULL,
    target_kind     TEXT NOT NULL,
    target          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_due ON deliveries(target_kind, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_hook ON deliveries(hook_id, seq);
CREATE INDEX deliveries_event ON deliveries(event_id);

CREATE TABLE attempts (
    delivery_id      TEXT NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
) STRICT;
",
    r"
CREATE TABLE outgoing_hooks (
    id                    TEXT PRIMARY KEY,
    agent                 TEXT,
    name                  TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,
    method                TEXT NOT NULL,
    headers               TEXT NOT NULL,
    signature             TEXT NOT NULL,
    secret                BLOB NOT NULL,
    auth                  BLOB NOT NULL,
    timeout_ms            INTEGER NOT NULL,
    retry                 TEXT NOT NULL,
    rate_limit_per_minute INTEGER,
    max_concurrency       INTEGER NOT NULL,
    enabled               INTEGER NOT NULL,
    paused                INTEGER NOT NULL,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    created_at            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE outgoing_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    event    TEXT NOT NULL,
    agent    TEXT,
    data     TEXT NOT NULL,
    metadata TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX outgoing_events_at ON outgoing_events(at);

ALTER TABLE deliveries ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status != 'pending';
CREATE INDEX attempts_started ON attempts(started_at);
",
    // Bodies move out of `events`: SQLite rewrites a whole row, overflow
    // pages included, on every UPDATE, and an event's row is updated when it
    // is claimed and when it is routed. Keeping kilobytes of payload out of
    // that row keeps those updates to a page.
    r"
CREATE TABLE event_bodies (
    seq  INTEGER PRIMARY KEY,
    body BLOB NOT NULL
) STRICT;
INSERT INTO event_bodies (seq, body) SELECT seq, body FROM events;
ALTER TABLE events DROP COLUMN body;
CREATE TRIGGER events_drop_body AFTER DELETE ON events BEGIN
    DELETE FROM event_bodies WHERE seq = old.seq;
END;
",
    // A pack of deliveries sent as one request, tagged before the send and
    // cleared when its outcome is recorded.
    r"
ALTER TABLE deliveries ADD COLUMN pack TEXT;
ALTER TABLE outgoing_hooks ADD COLUMN previous_secret BLOB;
ALTER TABLE outgoing_hooks ADD COLUMN previous_expires_at INTEGER;
",
    // API tokens by digest, and the record of every change.
    r"
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    via    TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT
) STRICT;
",
    // Routing rules of incoming hooks, and answers kept for Idempotency-Key.
    r"
CREATE TABLE hook_commands (
    id         TEXT PRIMARY KEY,
    hook_id    TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    action     TEXT NOT NULL,
    agent      TEXT,
    template   TEXT,
    conditions TEXT NOT NULL,
    url        TEXT,
    priority   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX hook_commands_hook ON hook_commands(hook_id);
CREATE TRIGGER hooks_drop_commands AFTER DELETE ON hooks BEGIN
    DELETE FROM hook_commands WHERE hook_id = old.id;
END;

CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    status       INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_created ON idempotency(created_at);
",
    // Rules act: `stop`, what each rule did with an event, the tasks they
    // create, and state kept per subject (a pull request's reviews).
    r"
ALTER TABLE hook_commands ADD COLUMN stop INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN outcomes TEXT;

CREATE TABLE tasks (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    agent      TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    url        TEXT,
    hook_id    TEXT,
    event_id   TEXT,
    rule_id    TEXT,
    status     TEXT NOT NULL,
    result     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tasks_agent ON tasks(agent, seq);
CREATE INDEX tasks_status ON tasks(status, seq);

CREATE TABLE subjects (
    hook_id    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (hook_id, subject)
) STRICT;
CREATE TRIGGER hooks_drop_subjects AFTER DELETE ON hooks BEGIN
    DELETE FROM subjects WHERE hook_id = old.id;
END;
",
    // Reply credentials of incoming hooks (sealed JSON), and questions
    // about events.
    r"
ALTER TABLE hooks ADD COLUMN reply BLOB;

CREATE TABLE questions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    hook_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    agent       TEXT NOT NULL,
    question    TEXT NOT NULL,
    status      TEXT NOT NULL,
    answer      TEXT,
    created_at  INTEGER NOT NULL,
    answered_at INTEGER
) STRICT;
CREATE INDEX questions_event ON questions(event_id, seq);

ALTER TABLE hooks ADD COLUMN slug TEXT;
ALTER TABLE hook_commands ADD COLUMN reply INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN reply INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hook_commands ADD COLUMN signature TEXT NOT NULL DEFAULT 'chorus';
CREATE UNIQUE INDEX hooks_slug ON hooks(slug) WHERE slug IS NOT NULL;
",
    // Workflows, their runs, each step's outcome and approval gates.
    r"
CREATE TABLE workflows (
    name       TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    enabled    INTEGER NOT NULL,
    agent      TEXT,
    origin     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    secret     BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    workflow    TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    headers     TEXT NOT NULL,
    unsigned    INTEGER NOT NULL,
    test        INTEGER NOT NULL,
    error       TEXT,
    wake_at     INTEGER,
    lease_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE INDEX runs_due ON runs(status, wake_at);
CREATE INDEX runs_workflow ON runs(workflow, seq);

CREATE TABLE run_steps (
    run_id      TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    output      TEXT NOT NULL,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
) STRICT;

CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    step       INTEGER NOT NULL,
    step_name  TEXT NOT NULL,
    status     TEXT NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (run_id, step)
) STRICT;
",
    // Aggregation windows: a hook's events collect and go out as one
    // summary when the window ends.
    r"
ALTER TABLE hooks ADD COLUMN aggregate_secs INTEGER;

CREATE TABLE windows (
    hook_id TEXT NOT NULL,
    ends_at INTEGER NOT NULL,
    closed  INTEGER NOT NULL,
    PRIMARY KEY (hook_id, ends_at)
) STRICT;
CREATE INDEX windows_open ON windows(closed, ends_at);
CREATE TABLE window_events (
    hook_id  TEXT NOT NULL,
    ends_at  INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (hook_id, ends_at, event_id)
) STRICT;
CREATE TRIGGER hooks_drop_windows AFTER DELETE ON hooks BEGIN
    DELETE FROM windows WHERE hook_id = old.id;
    DELETE FROM window_events WHERE hook_id = old.id;
END;
", // Hooks that post CI results and alerts only when they change.
    r"
ALTER TABLE hooks ADD COLUMN notify_changes INTEGER NOT NULL DEFAULT 0;
",
    // The chat message showing each subject (a CI run), so its later events
    // edit it in place, across restarts.
    r"
CREATE TABLE subject_messages (
    target     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (target, subject)
) STRICT;
CREATE INDEX subject_messages_age ON subject_messages(updated_at);
",
    // Hooks whose pull requests and incidents each get a Discord thread.
    r"
ALTER TABLE hooks ADD COLUMN threads INTEGER NOT NULL DEFAULT 0;
",
    // Agents whose Discord webhook URL Discord refuses: their messages wait.
    r"
ALTER TABLE agents ADD COLUMN degraded_reason TEXT;
",
    // Where a watcher (the Docker engine's event stream) left off.
    r"
CREATE TABLE cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
",
    // Claims look for an older pending delivery to the same target, so a
    // channel's events go out in order.
    r"
CREATE INDEX deliveries_target ON deliveries(target, seq) WHERE status = 'pending';
",
    // A subscription's circuit breaker opens for a while instead of
    // disabling it; disabled only after failing for long.
    r"
ALTER TABLE outgoing_hooks ADD COLUMN breaker_until INTEGER;
ALTER TABLE outgoing_hooks ADD COLUMN failing_since INTEGER;
",
    // Bodies are kept LZ4-compressed (`encoding` 1) where that is smaller:
    // a JSON payload shrinks three to six times, so an 8 KB push fits in
    // one B-tree page instead of three, and each commit and checkpoint
    // writes that much less. Rows from before keep `encoding` 0 (as sent).
    r"
ALTER TABLE event_bodies ADD COLUMN encoding INTEGER NOT NULL DEFAULT 0;
",
];

pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
