//! Jira Cloud and Server (`jira:issue_created`, `jira:issue_updated`,
//! `jira:issue_deleted`, `comment_created`, …): the issue key and summary
//! first, what changed, who did it, linked to the issue's page.

use std::fmt::Write as _;

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, s, truncate};

const BODY_MAX: usize = 600;
/// Fields whose change is noise in a notification.
const QUIET_FIELDS: &[&str] =
    &["timeoriginalestimate", "timeestimate", "WorklogId", "RemoteIssueLink", "Rank"];

pub(crate) fn format(event_type: &str, p: &Value) -> Option<Message> {
    let issue = p.get("issue")?;
    let key = s(issue, "/key")?;
    let summary = s(issue, "/fields/summary").unwrap_or("");
    let who = s(p, "/user/displayName")
        .or_else(|| s(p, "/comment/author/displayName"))
        .or_else(|| s(p, "/user/name"));
    let kind = s(issue, "/fields/issuetype/name").unwrap_or("Issue");
    let event = event_type.trim_start_matches("jira:");
    let comment = p.get("comment").filter(|c| c.is_object());
    let (verb, colour) = match event {
        "issue_created" => ("created", color::GREEN),
        "issue_deleted" => ("deleted", color::GREY),
        "comment_created" => ("commented on", color::BLUE),
        "comment_updated" => ("edited a comment on", color::BLUE),
        "comment_deleted" => ("deleted a comment on", color::GREY),
        _ if comment.is_some() && changes(p).is_empty() => ("commented on", color::BLUE),
        _ => ("updated", color::YELLOW),
    };
    let mut m = Message::titled(format!("[{key}] {}", truncate(summary, 200)));
    m.url = browse_url(issue, key);
    m.color = Some(colour);
    m.author = who.map(str::to_owned);
    let mut text = format!("{} {verb} {} **{key}**", who.unwrap_or("Someone"), kind.to_lowercase());
    let changed = changes(p);
    if !changed.is_empty() {
        text.push('\n');
        for (field, from, to) in changed.iter().take(10) {
            let _ = write!(text, "\n**{field}**: {} → {}", or_none(from), or_none(to));
        }
    }
    if let Some(body) =
        comment.and_then(|c| c.get("body")).and_then(Value::as_str).filter(|b| !b.trim().is_empty())
    {
        let _ = write!(text, "\n\n> {}", truncate(body.trim(), BODY_MAX).replace('\n', "\n> "));
    } else if event == "issue_created"
        && let Some(d) = s(issue, "/fields/description")
    {
        let _ = write!(text, "\n\n{}", truncate(d.trim(), BODY_MAX));
    }
    m.description = text;
    for (name, pointer) in [
        ("Status", "/fields/status/name"),
        ("Priority", "/fields/priority/name"),
        ("Assignee", "/fields/assignee/displayName"),
    ] {
        if let Some(v) = s(issue, pointer) {
            m = m.field(name, v, true);
        }
    }
    let project = s(issue, "/fields/project/name").or_else(|| s(issue, "/fields/project/key"));
    m.footer = Some(match project {
        Some(pr) => format!("Jira · {pr} · {event_type}"),
        None => format!("Jira · {event_type}"),
    });
    Some(m)
}

/// `(field, from, to)` of the changelog, without bookkeeping fields.
fn changes(p: &Value) -> Vec<(String, String, String)> {
    let Some(items) = p.pointer("/changelog/items").and_then(Value::as_array) else { return Vec::new() };
    items
        .iter()
        .filter_map(|i| {
            let field = i.get("field")?.as_str()?;
            if QUIET_FIELDS.contains(&field) {
                return None;
            }
            let text =
                |k: &str| i.get(k).and_then(Value::as_str).map(|t| truncate(t, 100)).unwrap_or_default();
            Some((field.to_owned(), text("fromString"), text("toString")))
        })
        .collect()
}

fn or_none(v: &str) -> &str {
    if v.is_empty() { "(none)" } else { v }
}

/// The issue's page: `<site>/browse/<KEY>`, from its REST `self` link.
fn browse_url(issue: &Value, key: &str) -> Option<String> {
    let api = s(issue, "/self")?;
    let site = &api[..api.find("/rest/api/")?];
    Some(format!("{site}/browse/{key}"))
}
