//! Bitbucket Cloud (`X-Event-Key: repo:push`, `pullrequest:created`, …):
//! the repository and what happened first, linked to the commits or the
//! pull request.

use std::fmt::Write as _;

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, first_line, s, short_sha, truncate};

const COMMITS_MAX: usize = 10;

pub(crate) fn format(event_type: &str, p: &Value) -> Option<Message> {
    let repo = s(p, "/repository/full_name").or_else(|| s(p, "/repository/name"))?;
    let who = s(p, "/actor/display_name").or_else(|| s(p, "/actor/nickname"));
    let (family, action) = event_type.split_once(':').unwrap_or(("", event_type));
    let mut m = match (family, action) {
        ("repo", "push") => push(p, repo)?,
        ("pullrequest", _) => pull_request(p, repo, action)?,
        _ => return None,
    };
    m.author = who.map(str::to_owned);
    m.footer = Some(format!("Bitbucket · {event_type}"));
    Some(m)
}

fn push(p: &Value, repo: &str) -> Option<Message> {
    let changes = p.pointer("/push/changes")?.as_array()?;
    let change = changes.first()?;
    let new = change.get("new").filter(|n| n.is_object());
    let name = new
        .and_then(|n| s(n, "/name"))
        .or_else(|| change.get("old").and_then(|o| s(o, "/name")))
        .unwrap_or("?");
    let commits = change.get("commits").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut m = if new.is_none() {
        Message::titled(format!("[{repo}] deleted {name}"))
    } else {
        let n = commits.len();
        let plural = if n == 1 { "" } else { "s" };
        Message::titled(format!("[{repo}] {n} new commit{plural} to {name}"))
    };
    m.color = Some(if new.is_none() { color::GREY } else { color::BLUE });
    m.url = s(change, "/links/html/href")
        .or_else(|| new.and_then(|n| s(n, "/links/html/href")))
        .or_else(|| s(p, "/repository/links/html/href"))
        .map(str::to_owned);
    let mut text = String::new();
    for c in commits.iter().take(COMMITS_MAX) {
        let hash = s(c, "/hash").map_or("", short_sha);
        let msg = truncate(first_line(s(c, "/message").unwrap_or("")), 120);
        match s(c, "/links/html/href") {
            Some(u) => {
                let _ = writeln!(text, "[`{hash}`]({u}) {msg}");
            }
            None => {
                let _ = writeln!(text, "`{hash}` {msg}");
            }
        }
    }
    m.description = text.trim_end().to_owned();
    Some(m)
}

fn pull_request(p: &Value, repo: &str, action: &str) -> Option<Message> {
    let pr = p.get("pullrequest")?;
    let id = pr.get("id").and_then(Value::as_u64).map(|n| format!(" #{n}")).unwrap_or_default();
    let title = s(pr, "/title").unwrap_or("");
    let verb = match action {
        "created" => "opened",
        "fulfilled" => "merged",
        "rejected" => "declined",
        "approved" => "approved",
        "unapproved" => "unapproved",
        "changes_request_created" => "requested changes on",
        "comment_created" => "commented on",
        other => other,
    };
    let mut m = Message::titled(format!("[{repo}] Pull request{id} {verb}: {}", truncate(title, 200)));
    m.url = s(pr, "/links/html/href").map(str::to_owned);
    m.color = Some(match action {
        "fulfilled" => color::PURPLE,
        "rejected" => color::RED,
        "approved" => color::GREEN,
        _ => color::BLUE,
    });
    let from = s(pr, "/source/branch/name");
    let to = s(pr, "/destination/branch/name");
    if let (Some(f), Some(t)) = (from, to) {
        m.description = format!("`{f}` → `{t}`");
    }
    if let Some(c) = s(p, "/comment/content/raw") {
        let _ = write!(m.description, "\n\n> {}", truncate(c, 600).replace('\n', "\n> "));
    }
    Some(m)
}
