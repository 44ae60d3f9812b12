//! Tasks created by rules, and the state kept per subject of a hook's events.

use chorus_core::{
    NewOutgoingEvent, Page, Question, QuestionStatus, StoreError, Task, TaskQuery, TaskStatus,
};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    outgoing,
    sqlite::{corrupt, ms, not_found, page, parse_cursor, ts},
    writer::backend,
};

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Task)> {
    let status: String = row.get("status")?;
    let parse_opt = |col: &str| -> rusqlite::Result<Option<String>> { row.get(col) };
    Ok((
        row.get("seq")?,
        Task {
            id: row.get("id")?,
            agent: row.get::<_, String>("agent")?.parse().map_err(|_| corrupt("agent"))?,
            title: row.get("title")?,
            body: row.get("body")?,
            url: row.get("url")?,
            hook_id: parse_opt("hook_id")?.map(|h| h.parse()).transpose().map_err(|_| corrupt("hook_id"))?,
            event_id: parse_opt("event_id")?
                .map(|e| e.parse())
                .transpose()
                .map_err(|_| corrupt("event_id"))?,
            rule_id: row.get("rule_id")?,
            status: TaskStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            result: row.get("result")?,
            reply: row.get("reply")?,
            created_at: ts(row.get("created_at")?),
            updated_at: ts(row.get("updated_at")?),
        },
    ))
}

/// Insert a task; an id already present is left as it is (a re-routed event).
pub(crate) fn insert(conn: &Connection, t: &Task) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tasks (id, agent, title, body, url, hook_id, event_id, rule_id, status, result,
                            created_at, updated_at, reply)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)
         ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.id,
            t.agent.as_str(),
            t.title,
            t.body,
            t.url,
            t.hook_id.as_ref().map(chorus_core::HookId::as_str),
            t.event_id.as_ref().map(chorus_core::EventId::as_str),
            t.rule_id,
            t.status.as_str(),
            t.result,
            ms(t.created_at),
            t.reply,
        ])
    })
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Task>, StoreError> {
    conn.prepare_cached("SELECT * FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok(task_from_row(r)?.1)).optional())
        .map_err(backend)
}

pub(crate) fn list(conn: &Connection, q: &TaskQuery) -> Result<Page<Task>, StoreError> {
    let before = parse_cursor(q.cursor.as_deref())?;
    let limit = q.limit.clamp(1, 1000);
    let rows = conn
        .prepare_cached(
            "SELECT * FROM tasks WHERE seq < ?1 AND (?2 IS NULL OR agent = ?2) AND (?3 IS NULL OR status = ?3)
             ORDER BY seq DESC LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(
                params![
                    before,
                    q.agent.as_ref().map(chorus_core::AgentName::as_str),
                    q.status.map(TaskStatus::as_str),
                    limit + 1
                ],
                task_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    Ok(page(rows, limit))
}

fn open_task(conn: &Connection, id: &str) -> Result<Task, StoreError> {
    let task = get(conn, id)?.ok_or_else(|| not_found("task", &id))?;
    if task.status.is_final() {
        return Err(StoreError::Conflict(format!("task {id} is already {}", task.status.as_str())));
    }
    Ok(task)
}

pub(crate) fn finish(
    conn: &Connection,
    id: &str,
    status: TaskStatus,
    result: Option<&str>,
    now: Timestamp,
    events: &[NewOutgoingEvent],
    deliveries: &[chorus_core::NewDelivery],
) -> Result<Task, StoreError> {
    open_task(conn, id)?;
    conn.execute(
        "UPDATE tasks SET status = ?2, result = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, status.as_str(), result, ms(now)],
    )
    .map_err(backend)?;
    for e in events {
        outgoing::emit(conn, e)?;
    }
    crate::sqlite::insert_deliveries(conn, deliveries, ms(now))?;
    get(conn, id)?.ok_or_else(|| not_found("task", &id))
}

pub(crate) fn update(
    conn: &Connection,
    id: &str,
    title: Option<&str>,
    body: Option<&str>,
    now: Timestamp,
) -> Result<Task, StoreError> {
    open_task(conn, id)?;
    conn.execute(
        "UPDATE tasks SET title = COALESCE(?2, title), body = COALESCE(?3, body), updated_at = ?4 WHERE id = ?1",
        params![id, title, body, ms(now)],
    )
    .map_err(backend)?;
    get(conn, id)?.ok_or_else(|| not_found("task", &id))
}

pub(crate) fn subject(conn: &Connection, hook: &str, subject: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT state FROM subjects WHERE hook_id = ?1 AND subject = ?2")
        .and_then(|mut s| s.query_row(params![hook, subject], |r| r.get(0)).optional())
        .map_err(backend)
}

pub(crate) fn put_subject(
    conn: &Connection,
    hook: &str,
    subject: &str,
    state: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO subjects (hook_id, subject, state, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (hook_id, subject) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![hook, subject, state, now]))
    .map_err(backend)?;
    Ok(())
}

fn question_from_row(row: &Row<'_>) -> rusqlite::Result<Question> {
    let status: String = row.get("status")?;
    Ok(Question {
        id: row.get("id")?,
        hook_id: row.get::<_, String>("hook_id")?.parse().map_err(|_| corrupt("hook_id"))?,
        event_id: row.get::<_, String>("event_id")?.parse().map_err(|_| corrupt("event_id"))?,
        agent: row.get::<_, String>("agent")?.parse().map_err(|_| corrupt("agent"))?,
        question: row.get("question")?,
        status: QuestionStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        answer: row.get("answer")?,
        created_at: ts(row.get("created_at")?),
        answered_at: row.get::<_, Option<i64>>("answered_at")?.map(ts),
    })
}

/// Insert a question; an id already present is left as it is.
pub(crate) fn insert_question(conn: &Connection, q: &Question) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO questions (id, hook_id, event_id, agent, question, status, answer, created_at, answered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            q.id,
            q.hook_id.as_str(),
            q.event_id.as_str(),
            q.agent.as_str(),
            q.question,
            q.status.as_str(),
            q.answer,
            ms(q.created_at),
            q.answered_at.map(ms),
        ])
    })
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn questions(conn: &Connection, event: &str) -> Result<Vec<Question>, StoreError> {
    conn.prepare_cached("SELECT * FROM questions WHERE event_id = ?1 ORDER BY seq")
        .and_then(|mut s| s.query_map([event], question_from_row)?.collect())
        .map_err(backend)
}

pub(crate) fn answer(conn: &Connection, id: &str, answer: &str, now: Timestamp) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE questions SET status = 'answered', answer = ?2, answered_at = ?3
             WHERE id = ?1 AND status = 'pending'",
            params![id, answer, ms(now)],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("question {id} is not pending")));
    }
    Ok(())
}

pub(crate) fn question(conn: &Connection, id: &str) -> Result<Option<Question>, StoreError> {
    conn.prepare_cached("SELECT * FROM questions WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], question_from_row).optional())
        .map_err(backend)
}
