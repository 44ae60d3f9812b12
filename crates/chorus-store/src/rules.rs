//! Routing rules of incoming hooks.

use chorus_core::{HookId, Rule, StoreError};
use rusqlite::{Connection, Row, params};

use crate::{
    sqlite::{corrupt, json, json_col, ms, not_found, ts},
    writer::backend,
};

fn rule_from_row(row: &Row<'_>) -> rusqlite::Result<Rule> {
    let action: String = row.get("action")?;
    Ok(Rule {
        id: row.get("id")?,
        hook_id: row.get::<_, String>("hook_id")?.parse().map_err(|_| corrupt("hook_id"))?,
        trigger: row.get("trigger")?,
        action: chorus_core::Action::parse(&action).ok_or_else(|| corrupt("action"))?,
        agent: row
            .get::<_, Option<String>>("agent")?
            .map(|a| a.parse())
            .transpose()
            .map_err(|_| corrupt("agent"))?,
        template: row.get("template")?,
        conditions: json_col(row, "conditions")?,
        url: row.get("url")?,
        priority: row.get("priority")?,
        stop: row.get("stop")?,
        reply: row.get("reply")?,
        signature: match row.get::<_, String>("signature")?.as_str() {
            "standard" => chorus_core::SignatureScheme::Standard,
            "chorus" => chorus_core::SignatureScheme::Chorus,
            _ => return Err(corrupt("signature")),
        },
        created_at: ts(row.get("created_at")?),
    })
}

pub(crate) fn list(conn: &Connection, hook: &HookId) -> Result<Vec<Rule>, StoreError> {
    conn.prepare_cached(
        "SELECT * FROM hook_commands WHERE hook_id = ?1 ORDER BY priority DESC, created_at, id",
    )
    .and_then(|mut s| s.query_map([hook.as_str()], rule_from_row)?.collect())
    .map_err(backend)
}

fn hook_exists(conn: &Connection, hook: &HookId) -> Result<(), StoreError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM hooks WHERE id = ?1")
        .and_then(|mut s| s.exists([hook.as_str()]))
        .map_err(backend)?;
    if found { Ok(()) } else { Err(not_found("hook", hook)) }
}

fn insert(conn: &Connection, c: &Rule) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO hook_commands
             (id, hook_id, trigger, action, agent, template, conditions, url, priority, created_at, stop, reply,
              signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET
             trigger = excluded.trigger, action = excluded.action, agent = excluded.agent,
             template = excluded.template, conditions = excluded.conditions, url = excluded.url,
             priority = excluded.priority, stop = excluded.stop, reply = excluded.reply,
             signature = excluded.signature
         WHERE hook_commands.hook_id = excluded.hook_id",
    )
    .and_then(|mut s| {
        s.execute(params![
            c.id,
            c.hook_id.as_str(),
            c.trigger,
            c.action.as_str(),
            c.agent.as_ref().map(chorus_core::AgentName::as_str),
            c.template,
            json(&c.conditions),
            c.url,
            c.priority,
            ms(c.created_at),
            c.stop,
            c.reply,
            match c.signature {
                chorus_core::SignatureScheme::Chorus => "chorus",
                chorus_core::SignatureScheme::Standard => "standard",
            },
        ])
    })
    .map_err(backend)
    .and_then(|n| if n == 0 { Err(not_found("command", &c.id)) } else { Ok(()) })
}

pub(crate) fn put(conn: &Connection, c: &Rule) -> Result<(), StoreError> {
    hook_exists(conn, &c.hook_id)?;
    insert(conn, c)
}

pub(crate) fn delete(conn: &Connection, hook: &HookId, id: &str) -> Result<(), StoreError> {
    match conn
        .execute("DELETE FROM hook_commands WHERE hook_id = ?1 AND id = ?2", params![hook.as_str(), id])
        .map_err(backend)?
    {
        0 => Err(not_found("command", &id)),
        _ => Ok(()),
    }
}

pub(crate) fn replace(conn: &Connection, hook: &HookId, commands: &[Rule]) -> Result<(), StoreError> {
    hook_exists(conn, hook)?;
    conn.execute("DELETE FROM hook_commands WHERE hook_id = ?1", [hook.as_str()]).map_err(backend)?;
    commands.iter().try_for_each(|c| insert(conn, c))
}
