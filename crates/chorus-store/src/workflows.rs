//! Workflows, their runs, the steps' outcomes and approval gates.

use std::time::Duration;

use async_trait::async_trait;
use chorus_core::{
    Approval, ApprovalId, ApprovalStatus, AuditEntry, Effects, NewRun, Page, Run, RunId, RunQuery, RunStatus,
    Secret, SecretChange, StepCommit, StepRecord, StepStatus, StoreError, StoredWorkflow, WorkflowStore,
};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    SqliteStore, access, outgoing,
    sqlite::{corrupt, insert_deliveries, json, json_col, ms, not_found, page, parse_col, parse_cursor, ts},
    tasks,
    writer::backend,
};

fn context(id: &chorus_core::HookId) -> String {
    format!("workflow:{id}")
}

fn workflow_from_row(row: &Row<'_>) -> rusqlite::Result<StoredWorkflow> {
    Ok(StoredWorkflow {
        id: parse_col(row, "id")?,
        name: row.get("name")?,
        enabled: row.get("enabled")?,
        agent: row
            .get::<_, Option<String>>("agent")?
            .map(|a| a.parse())
            .transpose()
            .map_err(|_| corrupt("agent"))?,
        origin: row.get("origin")?,
        spec: json_col(row, "spec")?,
        has_secret: row.get::<_, Option<Vec<u8>>>("secret")?.is_some(),
        created_at: ts(row.get("created_at")?),
        updated_at: ts(row.get("updated_at")?),
    })
}

/// A workflow with its sealed secret.
type Sealed = (StoredWorkflow, Option<Vec<u8>>);

fn get_workflow(conn: &Connection, name: &str) -> Result<Option<Sealed>, StoreError> {
    conn.prepare_cached("SELECT * FROM workflows WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| Ok((workflow_from_row(r)?, r.get("secret")?))).optional())
        .map_err(backend)
}

fn step_from_row(row: &Row<'_>) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        index: row.get("idx")?,
        name: row.get("name")?,
        status: StepStatus::parse(&row.get::<_, String>("status")?).ok_or_else(|| corrupt("status"))?,
        output: json_col(row, "output")?,
        error: row.get("error")?,
        started_at: ts(row.get("started_at")?),
        duration_ms: row.get::<_, i64>("duration_ms")? as u64,
    })
}

fn approval_from_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        id: parse_col(row, "id")?,
        run_id: parse_col(row, "run_id")?,
        step: row.get("step")?,
        step_name: row.get("step_name")?,
        status: ApprovalStatus::parse(&row.get::<_, String>("status")?).ok_or_else(|| corrupt("status"))?,
        decided_by: row.get("decided_by")?,
        decided_at: row.get::<_, Option<i64>>("decided_at")?.map(ts),
        expires_at: ts(row.get("expires_at")?),
        created_at: ts(row.get("created_at")?),
    })
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Run)> {
    Ok((
        row.get("seq")?,
        Run {
            id: parse_col(row, "id")?,
            workflow: row.get("workflow")?,
            workflow_id: parse_col(row, "workflow_id")?,
            status: RunStatus::parse(&row.get::<_, String>("status")?).ok_or_else(|| corrupt("status"))?,
            spec: json_col(row, "spec")?,
            payload: json_col(row, "payload")?,
            headers: json_col(row, "headers")?,
            unsigned: row.get("unsigned")?,
            test: row.get("test")?,
            steps: Vec::new(),
            approvals: Vec::new(),
            error: row.get("error")?,
            wake_at: row.get::<_, Option<i64>>("wake_at")?.map(ts),
            created_at: ts(row.get("created_at")?),
            updated_at: ts(row.get("updated_at")?),
            finished_at: row.get::<_, Option<i64>>("finished_at")?.map(ts),
        },
    ))
}

/// Fill in a run's steps and approvals.
fn complete(conn: &Connection, run: &mut Run) -> Result<(), StoreError> {
    run.steps = conn
        .prepare_cached("SELECT * FROM run_steps WHERE run_id = ?1 ORDER BY idx")
        .and_then(|mut s| {
            s.query_map([run.id.as_str()], step_from_row)?.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    run.approvals = conn
        .prepare_cached("SELECT * FROM approvals WHERE run_id = ?1 ORDER BY step")
        .and_then(|mut s| {
            s.query_map([run.id.as_str()], approval_from_row)?.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    Ok(())
}

fn get_run(conn: &Connection, id: &str) -> Result<Option<Run>, StoreError> {
    let run = conn
        .prepare_cached("SELECT * FROM runs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok(run_from_row(r)?.1)).optional())
        .map_err(backend)?;
    match run {
        Some(mut run) => {
            complete(conn, &mut run)?;
            Ok(Some(run))
        }
        None => Ok(None),
    }
}

fn apply_effects(conn: &Connection, effects: &Effects, now: i64) -> Result<(), StoreError> {
    for task in &effects.tasks {
        tasks::insert(conn, task)?;
    }
    for event in &effects.events {
        outgoing::emit(conn, event)?;
    }
    insert_deliveries(conn, &effects.deliveries, now)
}

fn get_approval(conn: &Connection, id: &str) -> Result<Option<Approval>, StoreError> {
    conn.prepare_cached("SELECT * FROM approvals WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], approval_from_row).optional())
        .map_err(backend)
}

/// Delete runs that ended before `before`, with their steps and gates.
pub(crate) fn purge(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let before = ms(before);
    conn.execute(
        "DELETE FROM run_steps WHERE run_id IN (SELECT id FROM runs WHERE finished_at < ?1)",
        [before],
    )
    .map_err(backend)?;
    conn.execute(
        "DELETE FROM approvals WHERE run_id IN (SELECT id FROM runs WHERE finished_at < ?1)",
        [before],
    )
    .map_err(backend)?;
    let n = conn.execute("DELETE FROM runs WHERE finished_at < ?1", [before]).map_err(backend)?;
    Ok(n as u64)
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn workflows(&self) -> Result<Vec<StoredWorkflow>, StoreError> {
        self.read(|conn, _| {
            conn.prepare_cached("SELECT * FROM workflows ORDER BY name")
                .and_then(|mut s| s.query_map([], workflow_from_row)?.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(backend)
        })
        .await
    }

    async fn workflow(&self, name: &str) -> Result<Option<StoredWorkflow>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, _| Ok(get_workflow(conn, &name)?.map(|(w, _)| w))).await
    }

    async fn workflow_secret(
        &self,
        name: &str,
    ) -> Result<Option<(StoredWorkflow, Option<Secret>)>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, key| {
            let Some((w, sealed)) = get_workflow(conn, &name)? else { return Ok(None) };
            let secret = sealed.map(|s| key.open(&s, &context(&w.id))).transpose()?;
            Ok(Some((w, secret)))
        })
        .await
    }

    async fn put_workflow(
        &self,
        workflow: StoredWorkflow,
        secret: SecretChange,
        audit: Option<AuditEntry>,
    ) -> Result<StoredWorkflow, StoreError> {
        self.write(move |conn, key| {
            let existing = get_workflow(conn, &workflow.name)?;
            let (id, created_at, sealed) = match existing {
                Some((w, sealed)) => (w.id, w.created_at, sealed),
                None => (workflow.id.clone(), workflow.created_at, None),
            };
            let sealed = match secret {
                SecretChange::Keep => sealed,
                SecretChange::Set(s) => Some(key.seal(&s, &context(&id))),
                SecretChange::Clear => None,
            };
            conn.prepare_cached(
                "INSERT INTO workflows (id, name, enabled, agent, origin, spec, secret, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (name) DO UPDATE SET enabled = ?3, agent = ?4, origin = ?5, spec = ?6,
                    secret = ?7, updated_at = ?9",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    workflow.name,
                    workflow.enabled,
                    workflow.agent.as_ref().map(chorus_core::AgentName::as_str),
                    workflow.origin,
                    json(&workflow.spec),
                    sealed,
                    ms(created_at),
                    ms(workflow.updated_at),
                ])
            })
            .map_err(backend)?;
            if let Some(entry) = &audit {
                access::record(conn, entry)?;
            }
            Ok(get_workflow(conn, &workflow.name)?.expect("just written").0)
        })
        .await
    }

    async fn delete_workflow(&self, name: &str, audit: Option<AuditEntry>) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |conn, _| {
            let n = conn.execute("DELETE FROM workflows WHERE name = ?1", [&name]).map_err(backend)?;
            if n == 0 {
                return Err(not_found("workflow", &name));
            }
            if let Some(entry) = &audit {
                access::record(conn, entry)?;
            }
            Ok(())
        })
        .await
    }

    async fn start_run(&self, run: NewRun, effects: Effects) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            let now = ms(run.created_at);
            conn.prepare_cached(
                "INSERT INTO runs (id, workflow, workflow_id, status, spec, payload, headers, unsigned, test,
                                   created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.id.as_str(),
                    run.workflow.name,
                    run.workflow.id.as_str(),
                    json(&run.workflow.spec),
                    json(&run.payload),
                    json(&run.headers),
                    run.unsigned,
                    run.test,
                    now,
                ])
            })
            .map_err(backend)?;
            apply_effects(conn, &effects, now)
        })
        .await
    }

    async fn claim_runs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError> {
        let now = ms(now);
        let until = now + lease.as_millis() as i64;
        self.write(move |conn, _| {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM runs
                     WHERE (status = 'running' OR (status = 'waiting' AND wake_at <= ?1))
                       AND (lease_until IS NULL OR lease_until <= ?1)
                     ORDER BY seq LIMIT ?2",
                )
                .and_then(|mut s| s.query_map(params![now, limit as i64], |r| r.get(0))?.collect())
                .map_err(backend)?;
            let mut runs = Vec::with_capacity(ids.len());
            for id in ids {
                conn.execute("UPDATE runs SET lease_until = ?2 WHERE id = ?1", params![id, until])
                    .map_err(backend)?;
                runs.extend(get_run(conn, &id)?);
            }
            Ok(runs)
        })
        .await
    }

    async fn commit_step(&self, c: StepCommit) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            let now = ms(c.now);
            let finished = c.status.is_final().then_some(now);
            let n = conn
                .prepare_cached(
                    "UPDATE runs SET status = ?2, wake_at = ?3, error = COALESCE(?4, error), lease_until = ?5,
                        updated_at = ?6, finished_at = ?7
                     WHERE id = ?1 AND status IN ('running', 'waiting')",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        c.run_id.as_str(),
                        c.status.as_str(),
                        c.wake_at.map(ms),
                        c.error,
                        c.lease_until.map(ms),
                        now,
                        finished,
                    ])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("run {} is over (cancelled?)", c.run_id)));
            }
            if let Some(step) = &c.step {
                conn.prepare_cached(
                    "INSERT INTO run_steps (run_id, idx, name, status, output, error, started_at, duration_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        c.run_id.as_str(),
                        step.index,
                        step.name,
                        step.status.as_str(),
                        json(&step.output),
                        step.error,
                        ms(step.started_at),
                        step.duration_ms as i64,
                    ])
                })
                .map_err(backend)?;
            }
            if let Some(a) = &c.approval {
                conn.prepare_cached(
                    "INSERT INTO approvals (id, run_id, step, step_name, status, expires_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.id.as_str(),
                        a.run_id.as_str(),
                        a.step,
                        a.step_name,
                        ms(a.expires_at),
                        ms(a.created_at),
                    ])
                })
                .map_err(backend)?;
            }
            if let Some(id) = &c.expired {
                conn.execute(
                    "UPDATE approvals SET status = 'expired', decided_at = ?2 WHERE id = ?1 AND status = 'pending'",
                    params![id.as_str(), now],
                )
                .map_err(backend)?;
            }
            apply_effects(conn, &c.effects, now)
        })
        .await
    }

    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| get_run(conn, id.as_str())).await
    }

    async fn runs(&self, q: RunQuery) -> Result<Page<Run>, StoreError> {
        self.read(move |conn, _| {
            let before = parse_cursor(q.cursor.as_deref())?;
            let limit = q.limit.clamp(1, 1000);
            let rows = conn
                .prepare_cached(
                    "SELECT * FROM runs WHERE seq < ?1 AND (?2 IS NULL OR workflow = ?2)
                       AND (?3 IS NULL OR status = ?3)
                     ORDER BY seq DESC LIMIT ?4",
                )
                .and_then(|mut s| {
                    s.query_map(
                        params![before, q.workflow, q.status.map(RunStatus::as_str), limit + 1],
                        run_from_row,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(backend)?;
            let mut page = page(rows, limit);
            for run in &mut page.items {
                complete(conn, run)?;
            }
            Ok(page)
        })
        .await
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        let id = id.clone();
        self.read(move |conn, _| get_approval(conn, id.as_str())).await
    }

    async fn decide(
        &self,
        id: &ApprovalId,
        approve: bool,
        by: &str,
        now: Timestamp,
        effects: Effects,
        audit: Option<AuditEntry>,
    ) -> Result<Approval, StoreError> {
        let (id, by) = (id.clone(), by.to_owned());
        self.write(move |conn, _| {
            let gate = get_approval(conn, id.as_str())?.ok_or_else(|| not_found("approval", &id))?;
            if gate.status != ApprovalStatus::Pending {
                let by = gate.decided_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
                return Err(StoreError::Conflict(format!(
                    "this approval is already {}{by}",
                    gate.status.as_str()
                )));
            }
            if gate.expires_at <= now {
                return Err(StoreError::Conflict("this approval has expired".into()));
            }
            let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied };
            conn.execute(
                "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1",
                params![id.as_str(), status.as_str(), by, ms(now)],
            )
            .map_err(backend)?;
            let n = conn
                .execute(
                    "UPDATE runs SET status = 'running', wake_at = NULL, updated_at = ?2
                     WHERE id = ?1 AND status = 'waiting'",
                    params![gate.run_id.as_str(), ms(now)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "run {} is not waiting for this approval",
                    gate.run_id
                )));
            }
            apply_effects(conn, &effects, ms(now))?;
            if let Some(entry) = &audit {
                access::record(conn, entry)?;
            }
            get_approval(conn, id.as_str())?.ok_or_else(|| not_found("approval", &id))
        })
        .await
    }

    async fn cancel_run(
        &self,
        id: &RunId,
        now: Timestamp,
        effects: Effects,
        audit: Option<AuditEntry>,
    ) -> Result<Run, StoreError> {
        let id = id.clone();
        self.write(move |conn, _| {
            let run = get_run(conn, id.as_str())?.ok_or_else(|| not_found("run", &id))?;
            if run.status.is_final() {
                return Err(StoreError::Conflict(format!("run {id} is already {}", run.status.as_str())));
            }
            let now = ms(now);
            conn.execute(
                "UPDATE runs SET status = 'cancelled', wake_at = NULL, lease_until = NULL, updated_at = ?2,
                    finished_at = ?2, error = 'cancelled'
                 WHERE id = ?1",
                params![id.as_str(), now],
            )
            .map_err(backend)?;
            conn.execute(
                "UPDATE approvals SET status = 'denied', decided_by = 'cancelled', decided_at = ?2
                 WHERE run_id = ?1 AND status = 'pending'",
                params![id.as_str(), now],
            )
            .map_err(backend)?;
            apply_effects(conn, &effects, now)?;
            if let Some(entry) = &audit {
                access::record(conn, entry)?;
            }
            get_run(conn, id.as_str())?.ok_or_else(|| not_found("run", &id))
        })
        .await
    }

    async fn next_wake(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn, _| {
            conn.query_row(
                "SELECT MIN(wake_at) FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(ts))
            .map_err(backend)
        })
        .await
    }
}
