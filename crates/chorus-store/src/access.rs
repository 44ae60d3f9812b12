//! API tokens (kept as SHA-256 digests) and the audit log.

use chorus_core::{ApiToken, AuditEntry, NewApiToken, Page, StoreError, TokenScope};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{
    sqlite::{corrupt, ms, not_found, page, parse_cursor, ts},
    writer::backend,
};

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let scope: String = row.get("scope")?;
    Ok(ApiToken {
        id: row.get("id")?,
        name: row.get("name")?,
        scope: TokenScope::parse(&scope).ok_or_else(|| corrupt("scope"))?,
        created_at: ts(row.get("created_at")?),
        revoked_at: row.get::<_, Option<i64>>("revoked_at")?.map(ts),
    })
}

pub(crate) fn create(conn: &Connection, new: &NewApiToken) -> Result<(), StoreError> {
    let t = &new.token;
    conn.execute(
        "INSERT INTO api_tokens (id, name, scope, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![t.id, t.name, t.scope.as_str(), &new.hash[..], ms(t.created_at)],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<ApiToken>, StoreError> {
    conn.prepare_cached("SELECT * FROM api_tokens ORDER BY created_at, id")
        .and_then(|mut s| s.query_map([], token_from_row)?.collect())
        .map_err(backend)
}

pub(crate) fn by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
    conn.prepare_cached("SELECT * FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row([&hash[..]], token_from_row).optional())
        .map_err(backend)
}

pub(crate) fn revoke(conn: &Connection, id: &str, now: i64) -> Result<ApiToken, StoreError> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )
    .map_err(backend)?;
    conn.prepare_cached("SELECT * FROM api_tokens WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], token_from_row).optional())
        .map_err(backend)?
        .ok_or_else(|| not_found("token", &id))
}

pub(crate) fn record(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit (at, actor, via, action, target) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![ms(e.at), e.actor, e.via, e.action, e.target]))
        .map_err(backend)?;
    Ok(())
}

pub(crate) fn query(
    conn: &Connection,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<AuditEntry>, StoreError> {
    let before = parse_cursor(cursor)?;
    let rows = conn
        .prepare_cached("SELECT * FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2")
        .and_then(|mut s| {
            s.query_map(params![before, limit + 1], |r| {
                Ok((
                    r.get("seq")?,
                    AuditEntry {
                        at: ts(r.get("at")?),
                        actor: r.get("actor")?,
                        via: r.get("via")?,
                        action: r.get("action")?,
                        target: r.get("target")?,
                    },
                ))
            })?
            .collect()
        })
        .map_err(backend)?;
    Ok(page(rows, limit))
}
