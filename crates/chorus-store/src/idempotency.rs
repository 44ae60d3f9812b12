//! Responses kept for `Idempotency-Key`, sealed (a create's answer holds a
//! secret).

use chorus_core::{IdempotentResponse, Secret, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    crypto::MasterKey,
    sqlite::{ms, ts},
    writer::backend,
};

fn idempotency_context(key: &str) -> String {
    format!("idempotency:{key}")
}

pub(crate) fn idempotent(
    conn: &Connection,
    master: &MasterKey,
    key: &str,
) -> Result<Option<IdempotentResponse>, StoreError> {
    let row = conn
        .prepare_cached("SELECT request_hash, status, body, created_at FROM idempotency WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()
        })
        .map_err(backend)?;
    let Some((hash, status, sealed, at)) = row else { return Ok(None) };
    let body = master.open(&sealed, &idempotency_context(key))?;
    Ok(Some(IdempotentResponse {
        request_hash: hash.try_into().map_err(|_| StoreError::Unseal)?,
        status,
        body: body.expose().as_bytes().to_vec(),
        created_at: ts(at),
    }))
}

pub(crate) fn save_idempotent(
    conn: &Connection,
    master: &MasterKey,
    key: &str,
    r: &IdempotentResponse,
) -> Result<(), StoreError> {
    // Bodies are JSON written by the API, so text; a body that is not is kept as
    // its lossy text rather than refused, since the request already happened.
    let body = Secret::new(String::from_utf8_lossy(&r.body).into_owned());
    let sealed = master.seal(&body, &idempotency_context(key));
    let window = IdempotentResponse::WINDOW.as_millis() as i64;
    conn.prepare_cached(
        "INSERT INTO idempotency (key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
             body = excluded.body, created_at = excluded.created_at
         WHERE idempotency.created_at <= excluded.created_at - ?6",
    )
    .and_then(|mut s| {
        s.execute(params![key, &r.request_hash[..], r.status, sealed, ms(r.created_at), window])
    })
    .map_err(backend)?;
    Ok(())
}
