//! The PostgreSQL schema, as migrations applied in order. `chorus_schema`
//! records how many ran; a database that has more than this binary knows
//! was written by a newer Chorus and is refused.
//!
//! Times are milliseconds since the epoch (`BIGINT`), as in SQLite, so the
//! row codecs and `chorus-hookd migrate` move values without conversion.

/// The migrations.
pub(crate) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE agents (
    name                TEXT PRIMARY KEY,
    channel_id          TEXT,
    discord_webhook_url BYTEA,
    enabled             BOOLEAN NOT NULL,
    degraded_reason     TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE hooks (
    id                    TEXT PRIMARY KEY,
    agent                 TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    slug                  TEXT UNIQUE,
    source                TEXT NOT NULL,
    generic               TEXT,
    enabled               BOOLEAN NOT NULL,
    rate_limit_per_minute BIGINT NOT NULL,
    ip_allowlist          TEXT NOT NULL,
    template              TEXT,
    events                TEXT NOT NULL,
    aggregate_secs        BIGINT,
    notify_changes        BOOLEAN NOT NULL DEFAULT FALSE,
    threads               BOOLEAN NOT NULL DEFAULT FALSE,
    secret                BYTEA,
    previous_secret       BYTEA,
    previous_expires_at   BIGINT,
    reply                 BYTEA,
    created_at            BIGINT NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX hooks_agent ON hooks(agent);

CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    hook_id      TEXT NOT NULL,
    agent        TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    delivery_key TEXT,
    headers      TEXT NOT NULL,
    body         BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    status       TEXT NOT NULL,
    outcomes     TEXT,
    lease_until  BIGINT
);
CREATE UNIQUE INDEX events_dedupe ON events(hook_id, delivery_key) WHERE delivery_key IS NOT NULL;
CREATE INDEX events_received ON events(seq) WHERE status = 'received';
CREATE INDEX events_hook ON events(hook_id, seq);

CREATE TABLE deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    event_id        TEXT,
    hook_id         TEXT NOT NULL,
    target_kind     TEXT NOT NULL,
    target          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    attempt_base    BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    pack            TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(target_kind, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_hook ON deliveries(hook_id, seq);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status != 'pending';

CREATE TABLE attempts (
    delivery_id      TEXT NOT NULL,
    number           BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
);
CREATE INDEX attempts_started ON attempts(started_at);

CREATE TABLE outgoing_hooks (
    id                    TEXT PRIMARY KEY,
    agent                 TEXT,
    name                  TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,
    method                TEXT NOT NULL,
    headers               TEXT NOT NULL,
    signature             TEXT NOT NULL,
    secret                BYTEA NOT NULL,
    previous_secret       BYTEA,
    previous_expires_at   BIGINT,
    auth                  BYTEA NOT NULL,
    timeout_ms            BIGINT NOT NULL,
    retry                 TEXT NOT NULL,
    rate_limit_per_minute BIGINT,
    max_concurrency       BIGINT NOT NULL,
    enabled               BOOLEAN NOT NULL,
    paused                BOOLEAN NOT NULL,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    created_at            BIGINT NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE outgoing_events (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    event    TEXT NOT NULL,
    agent    TEXT,
    data     TEXT NOT NULL,
    metadata TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX outgoing_events_at ON outgoing_events(at);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE audit (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    via    TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT
);

CREATE TABLE hook_commands (
    id         TEXT PRIMARY KEY,
    hook_id    TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    action     TEXT NOT NULL,
    agent      TEXT,
    template   TEXT,
    conditions TEXT NOT NULL,
    url        TEXT,
    priority   BIGINT NOT NULL,
    stop       BOOLEAN NOT NULL DEFAULT FALSE,
    reply      BOOLEAN NOT NULL DEFAULT FALSE,
    signature  TEXT NOT NULL DEFAULT 'chorus',
    created_at BIGINT NOT NULL
);
CREATE INDEX hook_commands_hook ON hook_commands(hook_id);

CREATE TABLE idempotency (
    key          TEXT PRIMARY KEY,
    request_hash BYTEA NOT NULL,
    status       INTEGER NOT NULL,
    body         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX idempotency_created ON idempotency(created_at);

CREATE TABLE tasks (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    reply      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_agent ON tasks(agent, seq);
CREATE INDEX tasks_status ON tasks(status, seq);

CREATE TABLE subjects (
    hook_id    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (hook_id, subject)
);

CREATE TABLE questions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    hook_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    agent       TEXT NOT NULL,
    question    TEXT NOT NULL,
    status      TEXT NOT NULL,
    answer      TEXT,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT
);
CREATE INDEX questions_event ON questions(event_id, seq);

CREATE TABLE workflows (
    name       TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    enabled    BOOLEAN NOT NULL,
    agent      TEXT,
    origin     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    secret     BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE runs (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    workflow    TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    headers     TEXT NOT NULL,
    unsigned    BOOLEAN NOT NULL,
    test        BOOLEAN NOT NULL,
    error       TEXT,
    wake_at     BIGINT,
    lease_until BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX runs_due ON runs(status, wake_at);
CREATE INDEX runs_workflow ON runs(workflow, seq);

CREATE TABLE run_steps (
    run_id      TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    output      TEXT NOT NULL,
    error       TEXT,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE approvals (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    step       BIGINT NOT NULL,
    step_name  TEXT NOT NULL,
    status     TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (run_id, step)
);

CREATE TABLE windows (
    hook_id TEXT NOT NULL,
    ends_at BIGINT NOT NULL,
    closed  BOOLEAN NOT NULL,
    PRIMARY KEY (hook_id, ends_at)
);
CREATE INDEX windows_open ON windows(closed, ends_at);
CREATE TABLE window_events (
    hook_id  TEXT NOT NULL,
    ends_at  BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (hook_id, ends_at, event_id)
);

CREATE TABLE subject_messages (
    target     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (target, subject)
);
CREATE INDEX subject_messages_age ON subject_messages(updated_at);

CREATE TABLE cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What a hook owns goes with it, however it is deleted (directly or with
-- its agent), as SQLite's triggers do.
CREATE FUNCTION chorus_hook_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hook_commands WHERE hook_id = OLD.id;
    DELETE FROM subjects WHERE hook_id = OLD.id;
    DELETE FROM windows WHERE hook_id = OLD.id;
    DELETE FROM window_events WHERE hook_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER hooks_deleted AFTER DELETE ON hooks FOR EACH ROW EXECUTE FUNCTION chorus_hook_deleted();

-- Per-hook (and per-workflow) request budgets shared by every replica: a
-- token bucket of a minute's worth, refilled continuously.
CREATE TABLE rate_buckets (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    allowed    BOOLEAN NOT NULL
);

-- Which replica sends to each ordered target (a Discord channel or
-- webhook) until when: one sender per target keeps its messages in order
-- and its rate limits unshared.
CREATE TABLE target_leases (
    target TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);

-- Roles one replica holds at a time, until when: `router` routes events,
-- so they are decided in the order they arrived, as one process would.
CREATE TABLE leader_leases (
    role   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);

-- Replicas that say they are alive, and when they last did: what a
-- replica that stopped saying so had claimed is free at once, not when its
-- claims run out (minutes, for a delivery).
CREATE TABLE replicas (
    id      TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN lease_holder TEXT;
ALTER TABLE runs ADD COLUMN lease_holder TEXT;
",
    // Claims look for an older pending delivery to the same target, so a
    // channel's events go out in order.
    r"
CREATE INDEX deliveries_target ON deliveries(target, seq) WHERE status = 'pending';
",
    // A subscription's circuit breaker opens for a while instead of
    // disabling it; disabled only after failing for long.
    r"
ALTER TABLE outgoing_hooks ADD COLUMN breaker_until BIGINT;
ALTER TABLE outgoing_hooks ADD COLUMN failing_since BIGINT;
",
];
