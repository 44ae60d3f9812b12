//! GitLab events (`object_kind`). Messages name the project
//! (`path_with_namespace`) and link to the object or the project.

use std::fmt::Write as _;

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, first_line, human_secs, n, outcome_color, s, short_sha, truncate};

const BODY_MAX: usize = 1000;
const COMMITS_MAX: usize = 10;
/// GitLab marks a created or deleted ref with an all-zero sha.
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

pub(crate) fn format(event_type: &str, p: &Value) -> Option<Message> {
    let m = match event_type {
        "push" => push(p),
        "tag_push" => tag_push(p),
        "merge_request" => merge_request(p),
        "pipeline" => pipeline(p),
        "build" | "job" => job(p),
        "issue" | "work_item" => issue(p),
        "note" => note(p),
        "release" => release(p),
        "deployment" => deployment(p),
        "wiki_page" => wiki(p),
        "feature_flag" => feature_flag(p),
        _ => return None,
    };
    let mut m = m;
    m.footer = Some(format!("GitLab · {event_type}"));
    // A merge request's thread: its events and the comments on it.
    let iid = match event_type {
        "merge_request" => n(p, "/object_attributes/iid"),
        "note" => n(p, "/merge_request/iid"),
        _ => None,
    };
    m.thread = iid.map(|iid| format!("gitlab:mr:{}:{iid}", project(p)));
    if m.author.is_none() {
        m.author = s(p, "/user/name").or_else(|| s(p, "/user_name")).map(str::to_owned);
    }
    Some(m)
}

fn project(p: &Value) -> &str {
    s(p, "/project/path_with_namespace")
        .or_else(|| s(p, "/project_name"))
        .or_else(|| s(p, "/repository/name"))
        .unwrap_or("")
}

fn project_url(p: &Value) -> Option<&str> {
    s(p, "/project/web_url").or_else(|| s(p, "/repository/homepage"))
}

fn base(p: &Value, title: impl AsRef<str>, url: Option<&str>) -> Message {
    let mut m = Message::titled(format!("[{}] {}", project(p), title.as_ref()));
    m.url = url.or_else(|| project_url(p)).map(str::to_owned);
    m
}

fn branch(r: &str) -> &str {
    r.strip_prefix("refs/heads/").unwrap_or(r)
}

fn commit_lines(p: &Value) -> String {
    let commits = p["commits"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut text = String::new();
    for c in commits.iter().take(COMMITS_MAX) {
        let sha = short_sha(s(c, "/id").unwrap_or(""));
        let msg = truncate(first_line(s(c, "/message").or_else(|| s(c, "/title")).unwrap_or("")), 80);
        let who = s(c, "/author/name").unwrap_or("unknown");
        match s(c, "/url") {
            Some(url) => writeln!(text, "[`{sha}`]({url}) {msg} — {who}"),
            None => writeln!(text, "`{sha}` {msg} — {who}"),
        }
        .expect("write to String");
    }
    let total = p["total_commits_count"].as_u64().unwrap_or(commits.len() as u64) as usize;
    if total > COMMITS_MAX.min(commits.len()) {
        writeln!(text, "… and {} more", total - COMMITS_MAX.min(commits.len())).expect("write to String");
    }
    text.trim_end().to_owned()
}

fn push(p: &Value) -> Message {
    let name = branch(s(p, "/ref").unwrap_or(""));
    let total = p["total_commits_count"].as_u64().unwrap_or(0);
    let mut m = if s(p, "/after") == Some(ZERO_SHA) {
        let mut m = base(p, format!("Branch {name} deleted"), None);
        m.color = Some(color::RED);
        m
    } else if s(p, "/before") == Some(ZERO_SHA) {
        base(p, format!("New branch {name} with {total} commit{}", if total == 1 { "" } else { "s" }), None)
    } else {
        let mut m =
            base(p, format!("{total} new commit{} to {name}", if total == 1 { "" } else { "s" }), None);
        m.color = Some(color::ORANGE);
        m
    };
    m.description = commit_lines(p);
    m.field("Branch", format!("`{name}`"), true)
}

fn tag_push(p: &Value) -> Message {
    let tag = s(p, "/ref").unwrap_or("").trim_start_matches("refs/tags/");
    let mut m = if s(p, "/after") == Some(ZERO_SHA) {
        base(p, format!("Tag {tag} deleted"), None)
    } else {
        base(p, format!("New tag {tag}"), None)
    };
    m.color = Some(color::PURPLE);
    m
}

fn merge_request(p: &Value) -> Message {
    let mr = &p["object_attributes"];
    let action = s(mr, "/action").or_else(|| s(mr, "/state")).unwrap_or("updated");
    let verb = match action {
        "open" => "opened",
        "close" => "closed",
        "reopen" => "reopened",
        "update" => "updated",
        "merge" => "merged",
        "approved" | "approval" => "approved",
        other => other,
    };
    let mut m = base(
        p,
        format!(
            "Merge request !{} {verb}: {}",
            n(mr, "/iid").unwrap_or_default(),
            s(mr, "/title").unwrap_or("")
        ),
        s(mr, "/url"),
    );
    m.color = Some(match verb {
        "opened" | "reopened" | "approved" => color::GREEN,
        "merged" => color::PURPLE,
        "closed" => color::RED,
        _ => color::BLUE,
    });
    if matches!(verb, "opened" | "reopened") {
        m.description = s(mr, "/description").map(|d| truncate(d.trim(), BODY_MAX)).unwrap_or_default();
    }
    if let (Some(src), Some(dst)) = (s(mr, "/source_branch"), s(mr, "/target_branch")) {
        m = m.field("Branches", format!("`{src}` → `{dst}`"), true);
    }
    m
}

fn pipeline(p: &Value) -> Message {
    let pl = &p["object_attributes"];
    let status = s(pl, "/status").unwrap_or("unknown");
    let url = s(pl, "/url")
        .map(str::to_owned)
        .or_else(|| Some(format!("{}/-/pipelines/{}", project_url(p)?, n(pl, "/id")?)));
    let mut m = base(p, format!("Pipeline #{} {status}", n(pl, "/id").unwrap_or_default()), url.as_deref());
    m.color = Some(outcome_color(status));
    if let Some(r) = s(pl, "/ref") {
        m = m.field("Branch", format!("`{r}`"), true);
    }
    if let Some(d) = pl["duration"].as_f64() {
        m = m.field("Duration", human_secs(d as i64), true);
    }
    let failed: Vec<String> = p["builds"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|j| j["status"] == "failed")
                .filter_map(|j| Some(format!("{} ({})", s(j, "/name")?, s(j, "/stage").unwrap_or("?"))))
                .collect()
        })
        .unwrap_or_default();
    if !failed.is_empty() {
        m.description = format!("Failed: {}", failed.join(", "));
    } else if let Some(msg) = s(p, "/commit/message") {
        m.description =
            format!("`{}` {}", short_sha(s(p, "/commit/id").unwrap_or("")), truncate(first_line(msg), 100));
    }
    m.subject = n(pl, "/id").map(|id| format!("gitlab:pipeline:{}:{id}", project(p)));
    m
}

fn job(p: &Value) -> Message {
    let status = s(p, "/build_status").unwrap_or("unknown");
    let url = project_url(p).and_then(|u| Some(format!("{u}/-/jobs/{}", n(p, "/build_id")?)));
    let mut m = base(p, format!("Job {} {status}", s(p, "/build_name").unwrap_or("job")), url.as_deref());
    m.color = Some(outcome_color(status));
    if let Some(stage) = s(p, "/build_stage") {
        m = m.field("Stage", stage, true);
    }
    if let Some(r) = s(p, "/ref") {
        m = m.field("Branch", format!("`{r}`"), true);
    }
    if let Some(d) = p["build_duration"].as_f64() {
        m = m.field("Duration", human_secs(d as i64), true);
    }
    if status == "failed"
        && let Some(reason) = s(p, "/build_failure_reason")
    {
        m.description = format!("Failure: {}", reason.replace('_', " "));
    }
    m.subject = n(p, "/build_id").map(|id| format!("gitlab:job:{}:{id}", project(p)));
    m
}

fn issue(p: &Value) -> Message {
    let is = &p["object_attributes"];
    let action = s(is, "/action").unwrap_or("updated");
    let verb = match action {
        "open" => "opened",
        "close" => "closed",
        "reopen" => "reopened",
        "update" => "updated",
        other => other,
    };
    let mut m = base(
        p,
        format!("Issue #{} {verb}: {}", n(is, "/iid").unwrap_or_default(), s(is, "/title").unwrap_or("")),
        s(is, "/url"),
    );
    m.color = Some(match verb {
        "opened" | "reopened" => color::GREEN,
        "closed" => color::RED,
        _ => color::BLUE,
    });
    if matches!(verb, "opened" | "reopened") {
        m.description = s(is, "/description").map(|d| truncate(d.trim(), BODY_MAX)).unwrap_or_default();
    }
    m
}

fn note(p: &Value) -> Message {
    let note = &p["object_attributes"];
    let (what, title) = match s(note, "/noteable_type").unwrap_or("") {
        "MergeRequest" => (
            format!("merge request !{}", n(p, "/merge_request/iid").unwrap_or_default()),
            s(p, "/merge_request/title"),
        ),
        "Issue" => (format!("issue #{}", n(p, "/issue/iid").unwrap_or_default()), s(p, "/issue/title")),
        "Commit" => (format!("commit {}", short_sha(s(p, "/commit/id").unwrap_or(""))), None),
        "Snippet" => ("snippet".to_owned(), s(p, "/snippet/title")),
        other => (other.to_lowercase(), None),
    };
    let title = title.map(|t| format!(": {t}")).unwrap_or_default();
    let mut m = base(p, format!("New comment on {what}{title}"), s(note, "/url"));
    m.description = s(note, "/note").map(|d| truncate(d.trim(), BODY_MAX)).unwrap_or_default();
    m
}

fn release(p: &Value) -> Message {
    let action = match s(p, "/action").unwrap_or("update") {
        "create" => "published",
        "delete" => "deleted",
        _ => "updated",
    };
    let mut m = base(
        p,
        format!("Release {} {action}", s(p, "/name").or_else(|| s(p, "/tag")).unwrap_or("")),
        s(p, "/url"),
    );
    m.color = Some(color::PURPLE);
    m.description = s(p, "/description").map(|d| truncate(d.trim(), BODY_MAX)).unwrap_or_default();
    if let Some(tag) = s(p, "/tag") {
        m = m.field("Tag", format!("`{tag}`"), true);
    }
    m
}

fn deployment(p: &Value) -> Message {
    let status = s(p, "/status").unwrap_or("unknown");
    let mut m = base(
        p,
        format!("Deployment to {}: {status}", s(p, "/environment").unwrap_or("?")),
        s(p, "/deployable_url").or_else(|| s(p, "/environment_external_url")),
    );
    m.color = Some(outcome_color(status));
    if let Some(r) = s(p, "/ref") {
        m = m.field("Ref", format!("`{r}`"), true);
    }
    m
}

fn wiki(p: &Value) -> Message {
    let w = &p["object_attributes"];
    let action = s(w, "/action").unwrap_or("update");
    base(p, format!("Wiki page {}: {}", action, s(w, "/title").unwrap_or("")), s(w, "/url"))
}

fn feature_flag(p: &Value) -> Message {
    let f = &p["object_attributes"];
    let state = if f["active"].as_bool() == Some(true) { "enabled" } else { "disabled" };
    let mut m = base(p, format!("Feature flag {} {state}", s(f, "/name").unwrap_or("")), None);
    m.description = s(f, "/description").map(|d| truncate(d.trim(), BODY_MAX)).unwrap_or_default();
    m
}
