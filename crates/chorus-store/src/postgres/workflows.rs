//! Workflows, their runs, the steps' outcomes and approval gates.

use std::time::Duration;

use async_trait::async_trait;
use chorus_core::{
    Approval, ApprovalId, ApprovalStatus, AuditEntry, Effects, NewRun, Page, Run, RunId, RunQuery, RunStatus,
    Secret, SecretChange, StepCommit, StepRecord, StepStatus, StoreError, StoredWorkflow, WorkflowStore,
};
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::{
    Columns, LEASE_FREE, PostgresStore, corrupt, insert_deliveries, json, ms, not_found, outgoing, page,
    parse_cursor, pg, records, ts,
};

fn context(id: &chorus_core::HookId) -> String {
    format!("workflow:{id}")
}

fn workflow_from_row(row: &Row) -> Result<StoredWorkflow, StoreError> {
    Ok(StoredWorkflow {
        id: row.parsed("id")?,
        name: row.col("name")?,
        enabled: row.col("enabled")?,
        agent: row.parsed_opt("agent")?,
        origin: row.col("origin")?,
        spec: row.json("spec")?,
        has_secret: row.col::<Option<Vec<u8>>>("secret")?.is_some(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A workflow with its sealed secret.
type Sealed = (StoredWorkflow, Option<Vec<u8>>);

async fn get_workflow<C: GenericClient>(c: &C, name: &str, lock: bool) -> Result<Option<Sealed>, StoreError> {
    let sql = if lock {
        "SELECT * FROM workflows WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT * FROM workflows WHERE name = $1"
    };
    c.query_opt(sql, &[&name])
        .await
        .map_err(pg)?
        .map(|r| Ok((workflow_from_row(&r)?, r.col("secret")?)))
        .transpose()
}

fn step_from_row(row: &Row) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        index: row.uint("idx")?,
        name: row.col("name")?,
        status: StepStatus::parse(&row.col::<String>("status")?).ok_or_else(|| corrupt("status"))?,
        output: row.json("output")?,
        error: row.col("error")?,
        started_at: row.time("started_at")?,
        duration_ms: row.uint("duration_ms")?,
    })
}

fn approval_from_row(row: &Row) -> Result<Approval, StoreError> {
    Ok(Approval {
        id: row.parsed("id")?,
        run_id: row.parsed("run_id")?,
        step: row.uint("step")?,
        step_name: row.col("step_name")?,
        status: ApprovalStatus::parse(&row.col::<String>("status")?).ok_or_else(|| corrupt("status"))?,
        decided_by: row.col("decided_by")?,
        decided_at: row.time_opt("decided_at")?,
        expires_at: row.time("expires_at")?,
        created_at: row.time("created_at")?,
    })
}

fn run_from_row(row: &Row) -> Result<(i64, Run), StoreError> {
    Ok((
        row.col("seq")?,
        Run {
            id: row.parsed("id")?,
            workflow: row.col("workflow")?,
            workflow_id: row.parsed("workflow_id")?,
            status: RunStatus::parse(&row.col::<String>("status")?).ok_or_else(|| corrupt("status"))?,
            spec: row.json("spec")?,
            payload: row.json("payload")?,
            headers: row.json("headers")?,
            unsigned: row.col("unsigned")?,
            test: row.col("test")?,
            steps: Vec::new(),
            approvals: Vec::new(),
            error: row.col("error")?,
            wake_at: row.time_opt("wake_at")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            finished_at: row.time_opt("finished_at")?,
        },
    ))
}

/// Fill in a run's steps and approvals.
async fn complete<C: GenericClient>(c: &C, run: &mut Run) -> Result<(), StoreError> {
    run.steps = c
        .query("SELECT * FROM run_steps WHERE run_id = $1 ORDER BY idx", &[&run.id.as_str()])
        .await
        .map_err(pg)?
        .iter()
        .map(step_from_row)
        .collect::<Result<_, _>>()?;
    run.approvals = c
        .query("SELECT * FROM approvals WHERE run_id = $1 ORDER BY step", &[&run.id.as_str()])
        .await
        .map_err(pg)?
        .iter()
        .map(approval_from_row)
        .collect::<Result<_, _>>()?;
    Ok(())
}

async fn get_run<C: GenericClient>(c: &C, id: &str) -> Result<Option<Run>, StoreError> {
    let Some(row) = c.query_opt("SELECT * FROM runs WHERE id = $1", &[&id]).await.map_err(pg)? else {
        return Ok(None);
    };
    let (_, mut run) = run_from_row(&row)?;
    complete(c, &mut run).await?;
    Ok(Some(run))
}

async fn apply_effects<C: GenericClient>(c: &C, effects: &Effects, now: i64) -> Result<(), StoreError> {
    for task in &effects.tasks {
        records::insert_task(c, task).await?;
    }
    for event in &effects.events {
        outgoing::emit(c, event).await?;
    }
    insert_deliveries(c, &effects.deliveries, now).await
}

async fn get_approval<C: GenericClient>(c: &C, id: &str, lock: bool) -> Result<Option<Approval>, StoreError> {
    let sql = if lock {
        "SELECT * FROM approvals WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM approvals WHERE id = $1"
    };
    c.query_opt(sql, &[&id]).await.map_err(pg)?.map(|r| approval_from_row(&r)).transpose()
}

/// Delete runs that ended before `before`, with their steps and gates.
pub(crate) async fn purge<C: GenericClient>(c: &C, before: Timestamp) -> Result<u64, StoreError> {
    let before = ms(before);
    c.execute(
        "DELETE FROM run_steps WHERE run_id IN (SELECT id FROM runs WHERE finished_at < $1)",
        &[&before],
    )
    .await
    .map_err(pg)?;
    c.execute(
        "DELETE FROM approvals WHERE run_id IN (SELECT id FROM runs WHERE finished_at < $1)",
        &[&before],
    )
    .await
    .map_err(pg)?;
    c.execute("DELETE FROM runs WHERE finished_at < $1", &[&before]).await.map_err(pg)
}

#[async_trait]
impl WorkflowStore for PostgresStore {
    async fn workflows(&self) -> Result<Vec<StoredWorkflow>, StoreError> {
        let c = self.client().await?;
        c.query("SELECT * FROM workflows ORDER BY name", &[])
            .await
            .map_err(pg)?
            .iter()
            .map(workflow_from_row)
            .collect()
    }

    async fn workflow(&self, name: &str) -> Result<Option<StoredWorkflow>, StoreError> {
        Ok(get_workflow(&self.client().await?, name, false).await?.map(|(w, _)| w))
    }

    async fn workflow_secret(
        &self,
        name: &str,
    ) -> Result<Option<(StoredWorkflow, Option<Secret>)>, StoreError> {
        let Some((w, sealed)) = get_workflow(&self.client().await?, name, false).await? else {
            return Ok(None);
        };
        let secret = sealed.map(|s| self.key().open(&s, &context(&w.id))).transpose()?;
        Ok(Some((w, secret)))
    }

    async fn put_workflow(
        &self,
        workflow: StoredWorkflow,
        secret: SecretChange,
        audit: Option<AuditEntry>,
    ) -> Result<StoredWorkflow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let existing = get_workflow(&tx, &workflow.name, true).await?;
        let (id, created_at, sealed) = match existing {
            Some((w, sealed)) => (w.id, w.created_at, sealed),
            None => (workflow.id.clone(), workflow.created_at, None),
        };
        let sealed = match secret {
            SecretChange::Keep => sealed,
            SecretChange::Set(s) => Some(self.key().seal(&s, &context(&id))),
            SecretChange::Clear => None,
        };
        tx.execute(
            "INSERT INTO workflows (id, name, enabled, agent, origin, spec, secret, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET enabled = $3, agent = $4, origin = $5, spec = $6, secret = $7,
                updated_at = $9",
            &[
                &id.as_str(),
                &workflow.name,
                &workflow.enabled,
                &workflow.agent.as_ref().map(chorus_core::AgentName::as_str),
                &workflow.origin,
                &json(&workflow.spec),
                &sealed,
                &ms(created_at),
                &ms(workflow.updated_at),
            ],
        )
        .await
        .map_err(pg)?;
        if let Some(entry) = &audit {
            records::record_audit(&tx, entry).await?;
        }
        let stored = get_workflow(&tx, &workflow.name, false)
            .await?
            .ok_or_else(|| not_found("workflow", &workflow.name))?
            .0;
        tx.commit().await.map_err(pg)?;
        Ok(stored)
    }

    async fn delete_workflow(&self, name: &str, audit: Option<AuditEntry>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if tx.execute("DELETE FROM workflows WHERE name = $1", &[&name]).await.map_err(pg)? == 0 {
            return Err(not_found("workflow", &name));
        }
        if let Some(entry) = &audit {
            records::record_audit(&tx, entry).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn start_run(&self, run: NewRun, effects: Effects) -> Result<(), StoreError> {
        let now = ms(run.created_at);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO runs (id, workflow, workflow_id, status, spec, payload, headers, unsigned, test,
                               created_at, updated_at)
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $9)",
            &[
                &run.id.as_str(),
                &run.workflow.name,
                &run.workflow.id.as_str(),
                &json(&run.workflow.spec),
                &json(&run.payload),
                &json(&run.headers),
                &run.unsigned,
                &run.test,
                &now,
            ],
        )
        .await
        .map_err(pg)?;
        apply_effects(&tx, &effects, now).await?;
        tx.commit().await.map_err(pg)
    }

    async fn claim_runs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError> {
        let now = ms(now);
        let until = now + lease.as_millis() as i64;
        let c = self.client().await?;
        // SKIP LOCKED: replicas claiming at once take different runs.
        let rows = c
            .query(
                &format!(
                    "UPDATE runs SET lease_until = $2, lease_holder = $4
                     WHERE seq IN (SELECT seq FROM runs
                                   WHERE (status = 'running' OR (status = 'waiting' AND wake_at <= $1))
                                     AND {LEASE_FREE}
                                   ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING *"
                ),
                &[&now, &until, &(limit as i64), &self.inner.replica],
            )
            .await
            .map_err(pg)?;
        let mut runs = rows.iter().map(run_from_row).collect::<Result<Vec<_>, _>>()?;
        runs.sort_by_key(|(seq, _)| *seq);
        let mut out = Vec::with_capacity(runs.len());
        for (_, mut run) in runs {
            complete(&c, &mut run).await?;
            out.push(run);
        }
        Ok(out)
    }

    async fn commit_step(&self, c: StepCommit) -> Result<(), StoreError> {
        let now = ms(c.now);
        let finished = c.status.is_final().then_some(now);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "UPDATE runs SET status = $2, wake_at = $3, error = COALESCE($4, error), lease_until = $5,
                    updated_at = $6, finished_at = $7
                 WHERE id = $1 AND status IN ('running', 'waiting')",
                &[
                    &c.run_id.as_str(),
                    &c.status.as_str(),
                    &c.wake_at.map(ms),
                    &c.error,
                    &c.lease_until.map(ms),
                    &now,
                    &finished,
                ],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("run {} is over (cancelled?)", c.run_id)));
        }
        if let Some(step) = &c.step {
            tx.execute(
                "INSERT INTO run_steps (run_id, idx, name, status, output, error, started_at, duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &c.run_id.as_str(),
                    &i64::from(step.index),
                    &step.name,
                    &step.status.as_str(),
                    &json(&step.output),
                    &step.error,
                    &ms(step.started_at),
                    &(step.duration_ms as i64),
                ],
            )
            .await
            .map_err(pg)?;
        }
        if let Some(a) = &c.approval {
            tx.execute(
                "INSERT INTO approvals (id, run_id, step, step_name, status, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
                &[
                    &a.id.as_str(),
                    &a.run_id.as_str(),
                    &i64::from(a.step),
                    &a.step_name,
                    &ms(a.expires_at),
                    &ms(a.created_at),
                ],
            )
            .await
            .map_err(pg)?;
        }
        if let Some(id) = &c.expired {
            tx.execute(
                "UPDATE approvals SET status = 'expired', decided_at = $2 WHERE id = $1 AND status = 'pending'",
                &[&id.as_str(), &now],
            )
            .await
            .map_err(pg)?;
        }
        apply_effects(&tx, &c.effects, now).await?;
        tx.commit().await.map_err(pg)
    }

    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        get_run(&self.client().await?, id.as_str()).await
    }

    async fn runs(&self, q: RunQuery) -> Result<Page<Run>, StoreError> {
        let before = parse_cursor(q.cursor.as_deref())?;
        let limit = q.limit.clamp(1, 1000);
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT * FROM runs WHERE seq < $1 AND ($2::text IS NULL OR workflow = $2)
                   AND ($3::text IS NULL OR status = $3)
                 ORDER BY seq DESC LIMIT $4",
                &[&before, &q.workflow, &q.status.map(RunStatus::as_str), &(limit as i64 + 1)],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut page = page(rows, limit);
        for run in &mut page.items {
            complete(&c, run).await?;
        }
        Ok(page)
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        get_approval(&self.client().await?, id.as_str(), false).await
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // FOR UPDATE: two replicas deciding one gate at once decide it once.
        let gate = get_approval(&tx, id.as_str(), true).await?.ok_or_else(|| not_found("approval", id))?;
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
        tx.execute(
            "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4 WHERE id = $1",
            &[&id.as_str(), &status.as_str(), &by, &ms(now)],
        )
        .await
        .map_err(pg)?;
        let n = tx
            .execute(
                "UPDATE runs SET status = 'running', wake_at = NULL, updated_at = $2 WHERE id = $1 AND status = 'waiting'",
                &[&gate.run_id.as_str(), &ms(now)],
            )
            .await
            .map_err(pg)?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "run {} is not waiting for this approval",
                gate.run_id
            )));
        }
        apply_effects(&tx, &effects, ms(now)).await?;
        if let Some(entry) = &audit {
            records::record_audit(&tx, entry).await?;
        }
        let decided =
            get_approval(&tx, id.as_str(), false).await?.ok_or_else(|| not_found("approval", id))?;
        tx.commit().await.map_err(pg)?;
        Ok(decided)
    }

    async fn cancel_run(
        &self,
        id: &RunId,
        now: Timestamp,
        effects: Effects,
        audit: Option<AuditEntry>,
    ) -> Result<Run, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", &[&id.as_str()]).await.map_err(pg)?;
        let run = get_run(&tx, id.as_str()).await?.ok_or_else(|| not_found("run", id))?;
        if run.status.is_final() {
            return Err(StoreError::Conflict(format!("run {id} is already {}", run.status.as_str())));
        }
        let now = ms(now);
        tx.execute(
            "UPDATE runs SET status = 'cancelled', wake_at = NULL, lease_until = NULL, updated_at = $2,
                finished_at = $2, error = 'cancelled'
             WHERE id = $1",
            &[&id.as_str(), &now],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "UPDATE approvals SET status = 'denied', decided_by = 'cancelled', decided_at = $2
             WHERE run_id = $1 AND status = 'pending'",
            &[&id.as_str(), &now],
        )
        .await
        .map_err(pg)?;
        apply_effects(&tx, &effects, now).await?;
        if let Some(entry) = &audit {
            records::record_audit(&tx, entry).await?;
        }
        let cancelled = get_run(&tx, id.as_str()).await?.ok_or_else(|| not_found("run", id))?;
        tx.commit().await.map_err(pg)?;
        Ok(cancelled)
    }

    async fn next_wake(&self) -> Result<Option<Timestamp>, StoreError> {
        let c = self.client().await?;
        let min: Option<i64> = c
            .query_one("SELECT MIN(wake_at) FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL", &[])
            .await
            .map_err(pg)?
            .get(0);
        Ok(min.map(ts))
    }
}
