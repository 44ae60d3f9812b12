//! The smaller aggregates' SQL: routing rules, API tokens and the audit
//! log, answers kept for `Idempotency-Key`, tasks, questions and the state
//! kept per subject.

use chorus_core::{
    ApiToken, AuditEntry, HookId, IdempotentResponse, NewApiToken, NewOutgoingEvent, Page, Question,
    QuestionStatus, Rule, Secret, StoreError, Task, TaskQuery, TaskStatus, TokenScope,
};
use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::{Columns, corrupt, json, ms, not_found, page, parse_cursor, pg};
use crate::crypto::MasterKey;

// ---- routing rules

fn rule_from_row(row: &Row) -> Result<Rule, StoreError> {
    let action: String = row.col("action")?;
    Ok(Rule {
        id: row.col("id")?,
        hook_id: row.parsed("hook_id")?,
        trigger: row.col("trigger")?,
        action: chorus_core::Action::parse(&action).ok_or_else(|| corrupt("action"))?,
        agent: row.parsed_opt("agent")?,
        template: row.col("template")?,
        conditions: row.json("conditions")?,
        url: row.col("url")?,
        priority: i32::try_from(row.col::<i64>("priority")?).map_err(|_| corrupt("priority"))?,
        stop: row.col("stop")?,
        reply: row.col("reply")?,
        signature: match row.col::<String>("signature")?.as_str() {
            "standard" => chorus_core::SignatureScheme::Standard,
            "chorus" => chorus_core::SignatureScheme::Chorus,
            _ => return Err(corrupt("signature")),
        },
        created_at: row.time("created_at")?,
    })
}

pub(crate) async fn rules<C: GenericClient>(c: &C, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
    c.query(
        "SELECT * FROM hook_commands WHERE hook_id = $1 ORDER BY priority DESC, created_at, id",
        &[&hook.as_str()],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(rule_from_row)
    .collect()
}

async fn hook_exists<C: GenericClient>(c: &C, hook: &HookId) -> Result<(), StoreError> {
    // FOR SHARE: a hook deleted by another replica meanwhile waits for us,
    // and its trigger then removes the rules written here.
    match c.query_opt("SELECT 1 FROM hooks WHERE id = $1 FOR SHARE", &[&hook.as_str()]).await.map_err(pg)? {
        Some(_) => Ok(()),
        None => Err(not_found("hook", hook)),
    }
}

async fn insert_rule<C: GenericClient>(c: &C, r: &Rule) -> Result<(), StoreError> {
    let signature = match r.signature {
        chorus_core::SignatureScheme::Chorus => "chorus",
        chorus_core::SignatureScheme::Standard => "standard",
    };
    let n = c
        .execute(
            "INSERT INTO hook_commands
                 (id, hook_id, trigger, action, agent, template, conditions, url, priority, created_at, stop,
                  reply, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE SET
                 trigger = excluded.trigger, action = excluded.action, agent = excluded.agent,
                 template = excluded.template, conditions = excluded.conditions, url = excluded.url,
                 priority = excluded.priority, stop = excluded.stop, reply = excluded.reply,
                 signature = excluded.signature
             WHERE hook_commands.hook_id = excluded.hook_id",
            &[
                &r.id,
                &r.hook_id.as_str(),
                &r.trigger,
                &r.action.as_str(),
                &r.agent.as_ref().map(chorus_core::AgentName::as_str),
                &r.template,
                &json(&r.conditions),
                &r.url,
                &i64::from(r.priority),
                &ms(r.created_at),
                &r.stop,
                &r.reply,
                &signature,
            ],
        )
        .await
        .map_err(pg)?;
    if n == 0 { Err(not_found("command", &r.id)) } else { Ok(()) }
}

pub(crate) async fn put_rule<C: GenericClient>(c: &C, r: &Rule) -> Result<(), StoreError> {
    hook_exists(c, &r.hook_id).await?;
    insert_rule(c, r).await
}

pub(crate) async fn delete_rule<C: GenericClient>(c: &C, hook: &HookId, id: &str) -> Result<(), StoreError> {
    match c
        .execute("DELETE FROM hook_commands WHERE hook_id = $1 AND id = $2", &[&hook.as_str(), &id])
        .await
        .map_err(pg)?
    {
        0 => Err(not_found("command", &id)),
        _ => Ok(()),
    }
}

pub(crate) async fn replace_rules<C: GenericClient>(
    c: &C,
    hook: &HookId,
    rules: &[Rule],
) -> Result<(), StoreError> {
    hook_exists(c, hook).await?;
    c.execute("DELETE FROM hook_commands WHERE hook_id = $1", &[&hook.as_str()]).await.map_err(pg)?;
    for r in rules {
        insert_rule(c, r).await?;
    }
    Ok(())
}

// ---- API tokens and the audit log

fn token_from_row(row: &Row) -> Result<ApiToken, StoreError> {
    let scope: String = row.col("scope")?;
    Ok(ApiToken {
        id: row.col("id")?,
        name: row.col("name")?,
        scope: TokenScope::parse(&scope).ok_or_else(|| corrupt("scope"))?,
        created_at: row.time("created_at")?,
        revoked_at: row.time_opt("revoked_at")?,
    })
}

pub(crate) async fn create_token<C: GenericClient>(c: &C, new: &NewApiToken) -> Result<(), StoreError> {
    let t = &new.token;
    c.execute(
        "INSERT INTO api_tokens (id, name, scope, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&t.id, &t.name, &t.scope.as_str(), &&new.hash[..], &ms(t.created_at)],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn tokens<C: GenericClient>(c: &C) -> Result<Vec<ApiToken>, StoreError> {
    c.query("SELECT * FROM api_tokens ORDER BY created_at, id", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(token_from_row)
        .collect()
}

pub(crate) async fn token_by_hash<C: GenericClient>(
    c: &C,
    hash: &[u8; 32],
) -> Result<Option<ApiToken>, StoreError> {
    c.query_opt("SELECT * FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL", &[&&hash[..]])
        .await
        .map_err(pg)?
        .map(|r| token_from_row(&r))
        .transpose()
}

pub(crate) async fn revoke_token<C: GenericClient>(
    c: &C,
    id: &str,
    now: i64,
) -> Result<ApiToken, StoreError> {
    c.query_opt(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *",
        &[&id, &now],
    )
    .await
    .map_err(pg)?
    .map(|r| token_from_row(&r))
    .transpose()?
    .ok_or_else(|| not_found("token", &id))
}

pub(crate) async fn record_audit<C: GenericClient>(c: &C, e: &AuditEntry) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit (at, actor, via, action, target) VALUES ($1, $2, $3, $4, $5)",
        &[&ms(e.at), &e.actor, &e.via, &e.action, &e.target],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn audit<C: GenericClient>(
    c: &C,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<AuditEntry>, StoreError> {
    let before = parse_cursor(cursor)?;
    let rows = c
        .query(
            "SELECT * FROM audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            &[&before, &(limit as i64 + 1)],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok((
                r.col::<i64>("seq")?,
                AuditEntry {
                    at: r.time("at")?,
                    actor: r.col("actor")?,
                    via: r.col("via")?,
                    action: r.col("action")?,
                    target: r.col("target")?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(page(rows, limit))
}

// ---- Idempotency-Key answers, sealed (a create's answer holds a secret)

fn idempotency_context(key: &str) -> String {
    format!("idempotency:{key}")
}

pub(crate) async fn idempotent<C: GenericClient>(
    c: &C,
    master: &MasterKey,
    key: &str,
) -> Result<Option<IdempotentResponse>, StoreError> {
    let Some(row) = c
        .query_opt("SELECT request_hash, status, body, created_at FROM idempotency WHERE key = $1", &[&key])
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.col("request_hash")?;
    let status: i32 = row.col("status")?;
    let body = master.open(&row.col::<Vec<u8>>("body")?, &idempotency_context(key))?;
    Ok(Some(IdempotentResponse {
        request_hash: hash.try_into().map_err(|_| StoreError::Unseal)?,
        status: u16::try_from(status).map_err(|_| corrupt("status"))?,
        body: body.expose().as_bytes().to_vec(),
        created_at: row.time("created_at")?,
    }))
}

pub(crate) async fn save_idempotent<C: GenericClient>(
    c: &C,
    master: &MasterKey,
    key: &str,
    r: &IdempotentResponse,
) -> Result<(), StoreError> {
    let body = Secret::new(String::from_utf8_lossy(&r.body).into_owned());
    let sealed = master.seal(&body, &idempotency_context(key));
    let window = IdempotentResponse::WINDOW.as_millis() as i64;
    c.execute(
        "INSERT INTO idempotency (key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
             body = excluded.body, created_at = excluded.created_at
         WHERE idempotency.created_at <= excluded.created_at - $6",
        &[&key, &&r.request_hash[..], &i32::from(r.status), &sealed, &ms(r.created_at), &window],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

// ---- tasks

fn task_from_row(row: &Row) -> Result<(i64, Task), StoreError> {
    let status: String = row.col("status")?;
    Ok((
        row.col("seq")?,
        Task {
            id: row.col("id")?,
            agent: row.parsed("agent")?,
            title: row.col("title")?,
            body: row.col("body")?,
            url: row.col("url")?,
            hook_id: row.parsed_opt("hook_id")?,
            event_id: row.parsed_opt("event_id")?,
            rule_id: row.col("rule_id")?,
            status: TaskStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            result: row.col("result")?,
            reply: row.col("reply")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        },
    ))
}

/// Insert a task; an id already present is left as it is (a re-routed event).
pub(crate) async fn insert_task<C: GenericClient>(c: &C, t: &Task) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO tasks (id, agent, title, body, url, hook_id, event_id, rule_id, status, result,
                                created_at, updated_at, reply)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &stmt,
        &[
            &t.id,
            &t.agent.as_str(),
            &t.title,
            &t.body,
            &t.url,
            &t.hook_id.as_ref().map(HookId::as_str),
            &t.event_id.as_ref().map(chorus_core::EventId::as_str),
            &t.rule_id,
            &t.status.as_str(),
            &t.result,
            &ms(t.created_at),
            &t.reply,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn task<C: GenericClient>(c: &C, id: &str) -> Result<Option<Task>, StoreError> {
    c.query_opt("SELECT * FROM tasks WHERE id = $1", &[&id])
        .await
        .map_err(pg)?
        .map(|r| task_from_row(&r).map(|(_, t)| t))
        .transpose()
}

pub(crate) async fn tasks<C: GenericClient>(c: &C, q: &TaskQuery) -> Result<Page<Task>, StoreError> {
    let before = parse_cursor(q.cursor.as_deref())?;
    let limit = q.limit.clamp(1, 1000);
    let rows = c
        .query(
            "SELECT * FROM tasks WHERE seq < $1 AND ($2::text IS NULL OR agent = $2)
                AND ($3::text IS NULL OR status = $3)
             ORDER BY seq DESC LIMIT $4",
            &[
                &before,
                &q.agent.as_ref().map(chorus_core::AgentName::as_str),
                &q.status.map(TaskStatus::as_str),
                &(limit as i64 + 1),
            ],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, limit))
}

/// The task, locked for this transaction, if it is still open.
async fn open_task<C: GenericClient>(c: &C, id: &str) -> Result<Task, StoreError> {
    let task = c
        .query_opt("SELECT * FROM tasks WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .map_err(pg)?
        .map(|r| task_from_row(&r).map(|(_, t)| t))
        .transpose()?
        .ok_or_else(|| not_found("task", &id))?;
    if task.status.is_final() {
        return Err(StoreError::Conflict(format!("task {id} is already {}", task.status.as_str())));
    }
    Ok(task)
}

pub(crate) async fn finish_task<C: GenericClient>(
    c: &C,
    id: &str,
    status: TaskStatus,
    result: Option<&str>,
    now: Timestamp,
    events: &[NewOutgoingEvent],
    deliveries: &[chorus_core::NewDelivery],
) -> Result<Task, StoreError> {
    open_task(c, id).await?;
    c.execute(
        "UPDATE tasks SET status = $2, result = $3, updated_at = $4 WHERE id = $1",
        &[&id, &status.as_str(), &result, &ms(now)],
    )
    .await
    .map_err(pg)?;
    for e in events {
        super::outgoing::emit(c, e).await?;
    }
    super::insert_deliveries(c, deliveries, ms(now)).await?;
    task(c, id).await?.ok_or_else(|| not_found("task", &id))
}

pub(crate) async fn update_task<C: GenericClient>(
    c: &C,
    id: &str,
    title: Option<&str>,
    body: Option<&str>,
    now: Timestamp,
) -> Result<Task, StoreError> {
    open_task(c, id).await?;
    c.execute(
        "UPDATE tasks SET title = COALESCE($2, title), body = COALESCE($3, body), updated_at = $4 WHERE id = $1",
        &[&id, &title, &body, &ms(now)],
    )
    .await
    .map_err(pg)?;
    task(c, id).await?.ok_or_else(|| not_found("task", &id))
}

// ---- state kept per subject

pub(crate) async fn subject<C: GenericClient>(
    c: &C,
    hook: &str,
    subject: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt("SELECT state FROM subjects WHERE hook_id = $1 AND subject = $2", &[&hook, &subject])
        .await
        .map_err(pg)?
        .map(|r| r.get(0)))
}

pub(crate) async fn put_subject<C: GenericClient>(
    c: &C,
    hook: &str,
    subject: &str,
    state: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO subjects (hook_id, subject, state, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (hook_id, subject) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        &[&hook, &subject, &state, &now],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

// ---- questions

fn question_from_row(row: &Row) -> Result<Question, StoreError> {
    let status: String = row.col("status")?;
    Ok(Question {
        id: row.col("id")?,
        hook_id: row.parsed("hook_id")?,
        event_id: row.parsed("event_id")?,
        agent: row.parsed("agent")?,
        question: row.col("question")?,
        status: QuestionStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        answer: row.col("answer")?,
        created_at: row.time("created_at")?,
        answered_at: row.time_opt("answered_at")?,
    })
}

/// Insert a question; an id already present is left as it is.
pub(crate) async fn insert_question<C: GenericClient>(c: &C, q: &Question) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO questions (id, hook_id, event_id, agent, question, status, answer, created_at, answered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING",
        &[
            &q.id,
            &q.hook_id.as_str(),
            &q.event_id.as_str(),
            &q.agent.as_str(),
            &q.question,
            &q.status.as_str(),
            &q.answer,
            &ms(q.created_at),
            &q.answered_at.map(ms),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

pub(crate) async fn questions<C: GenericClient>(c: &C, event: &str) -> Result<Vec<Question>, StoreError> {
    c.query("SELECT * FROM questions WHERE event_id = $1 ORDER BY seq", &[&event])
        .await
        .map_err(pg)?
        .iter()
        .map(question_from_row)
        .collect()
}

pub(crate) async fn question<C: GenericClient>(c: &C, id: &str) -> Result<Option<Question>, StoreError> {
    c.query_opt("SELECT * FROM questions WHERE id = $1", &[&id])
        .await
        .map_err(pg)?
        .map(|r| question_from_row(&r))
        .transpose()
}

pub(crate) async fn answer<C: GenericClient>(
    c: &C,
    id: &str,
    answer: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = c
        .execute(
            "UPDATE questions SET status = 'answered', answer = $2, answered_at = $3
             WHERE id = $1 AND status = 'pending'",
            &[&id, &answer, &ms(now)],
        )
        .await
        .map_err(pg)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("question {id} is not pending")));
    }
    Ok(())
}
