//! Positions that outlive a process: which chat message shows each subject
//! (a CI run, a pipeline) at each target, so the subject's later messages
//! edit it instead of adding more; and where each watcher left off.

use chorus_core::{DeliveryId, StoreError, SubjectMessage};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{sqlite::ms, writer::backend};

pub(crate) fn find(conn: &Connection, target: &str, subject: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT message_id FROM subject_messages WHERE target = ?1 AND subject = ?2")
        .and_then(|mut s| s.query_row(params![target, subject], |r| r.get(0)).optional())
        .map_err(backend)
}

/// Keep `shown` for the target of `delivery`, inside the attempt's
/// transaction: the next message about the subject sees it or, after a
/// crash, the attempt is made again and records it then.
pub(crate) fn keep(
    conn: &Connection,
    delivery: &DeliveryId,
    shown: &SubjectMessage,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO subject_messages (target, subject, message_id, updated_at)
         SELECT target, ?2, ?3, ?4 FROM deliveries WHERE id = ?1
         ON CONFLICT (target, subject) DO UPDATE SET message_id = excluded.message_id,
                                                     updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![delivery.as_str(), shown.subject, shown.message_id, now]))
    .map_err(backend)?;
    Ok(())
}

/// Forget subjects nothing was said about since `before`: a run that old
/// will not move again, and a new message is right if it does.
pub(crate) fn purge(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let removed =
        conn.execute("DELETE FROM subject_messages WHERE updated_at < ?1", [ms(before)]).map_err(backend)?;
    Ok(removed as u64)
}

pub(crate) fn cursor(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM cursors WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)
}

pub(crate) fn set_cursor(conn: &Connection, name: &str, value: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![name, value, now]))
    .map_err(backend)?;
    Ok(())
}
