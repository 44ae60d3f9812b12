//! GitHub events. Every message names the repository in its title and links
//! to the object it is about (or to the repository).

use std::fmt::Write as _;

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, duration_between, first_line, n, outcome_color, s, short_sha, truncate};

/// Bodies of issues, PRs and comments are cut to this many characters: a
/// notification should say what happened, the link has the rest.
const BODY_MAX: usize = 1000;
/// Commits listed for a push.
const COMMITS_MAX: usize = 10;

pub(crate) fn format(event_type: &str, p: &Value) -> Option<Message> {
    let (event, action) = event_type.split_once('.').unwrap_or((event_type, ""));
    let m = match event {
        "push" => push(p),
        "pull_request" => pull_request(p, action),
        "pull_request_review" => review(p),
        "pull_request_review_comment" => review_comment(p),
        "issues" => issues(p, action),
        "issue_comment" => issue_comment(p),
        "release" => release(p, action),
        "workflow_run" => workflow_run(p),
        "workflow_job" => workflow_job(p),
        "check_run" => check_run(p),
        "check_suite" => check_suite(p),
        "create" | "delete" => create_delete(p, event),
        "ping" => ping(p),
        "star" | "watch" => star(p, action),
        "fork" => fork(p),
        "commit_comment" => commit_comment(p),
        "discussion" => discussion(p, action),
        "discussion_comment" => discussion_comment(p),
        "deployment" => deployment(p),
        "deployment_status" => deployment_status(p),
        _ => return None,
    };
    let mut m = finish(m, p, event_type);
    m.thread = pull_request_thread(p, event);
    Some(m)
}

/// A pull request's thread: its events, reviews and comments (an
/// `issue_comment` on a pull request carries `issue.pull_request`).
fn pull_request_thread(p: &Value, event: &str) -> Option<String> {
    let number = match event {
        "pull_request"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => n(p, "/pull_request/number")?,
        "issue_comment" if p.pointer("/issue/pull_request").is_some_and(Value::is_object) => {
            n(p, "/issue/number")?
        }
        _ => return None,
    };
    Some(format!("github:pr:{}:{number}", s(p, "/repository/full_name")?))
}

/// `[owner/repo] ` (or `[org] ` for organization-level events).
fn prefix(p: &Value) -> String {
    s(p, "/repository/full_name")
        .or_else(|| s(p, "/organization/login"))
        .map(|r| format!("[{r}] "))
        .unwrap_or_default()
}

fn base(p: &Value, title: impl AsRef<str>, url: Option<&str>) -> Message {
    let mut m = Message::titled(format!("{}{}", prefix(p), title.as_ref()));
    m.url = url.or_else(|| s(p, "/repository/html_url")).map(str::to_owned);
    m
}

fn finish(mut m: Message, p: &Value, event_type: &str) -> Message {
    if m.author.is_none() {
        m.author = s(p, "/sender/login").map(str::to_owned);
        m.author_url = s(p, "/sender/html_url").map(str::to_owned);
    }
    if let (Some(repo), Some(url)) = (s(p, "/repository/full_name"), s(p, "/repository/html_url"))
        && !m.fields.iter().any(|f| f.name == "Repository")
    {
        m.fields.push(chorus_core::Field {
            name: "Repository".into(),
            value: format!("[{repo}]({url})"),
            inline: true,
        });
    }
    m.footer = Some(format!("GitHub · {event_type}"));
    m
}

fn body(text: Option<&str>) -> String {
    text.map(|t| truncate(t.trim(), BODY_MAX)).unwrap_or_default()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn push(p: &Value) -> Message {
    let r#ref = s(p, "/ref").unwrap_or("");
    let (kind, name) = match r#ref.strip_prefix("refs/tags/") {
        Some(tag) => ("tag", tag),
        None => ("branch", r#ref.strip_prefix("refs/heads/").unwrap_or(r#ref)),
    };
    let commits = p["commits"].as_array().map(Vec::as_slice).unwrap_or_default();
    let flag = |k: &str| p[k].as_bool().unwrap_or(false);
    let compare = s(p, "/compare");
    let mut m = if flag("deleted") {
        let mut m = base(p, format!("{} {name} deleted", capitalise(kind)), None);
        m.color = Some(color::RED);
        m
    } else if kind == "tag" {
        let mut m = base(p, format!("New tag {name}"), s(p, "/head_commit/url").or(compare));
        m.color = Some(color::PURPLE);
        m
    } else if flag("forced") {
        let mut m = base(
            p,
            format!("{} force-pushed to {name}", plural(commits.len(), "commit", "commits")),
            compare,
        );
        m.color = Some(color::ORANGE);
        m
    } else if flag("created") {
        base(p, format!("New branch {name} with {}", plural(commits.len(), "commit", "commits")), compare)
    } else {
        let mut m =
            base(p, format!("{} to {name}", plural(commits.len(), "new commit", "new commits")), compare);
        m.color = Some(color::BLUE);
        m
    };
    let mut text = String::new();
    for c in commits.iter().take(COMMITS_MAX) {
        let sha = short_sha(s(c, "/id").unwrap_or(""));
        let msg = truncate(first_line(s(c, "/message").unwrap_or("")), 80);
        let who = s(c, "/author/username").or_else(|| s(c, "/author/name")).unwrap_or("unknown");
        match s(c, "/url") {
            Some(url) => writeln!(text, "[`{sha}`]({url}) {msg} — {who}"),
            None => writeln!(text, "`{sha}` {msg} — {who}"),
        }
        .expect("write to String");
    }
    if commits.len() > COMMITS_MAX {
        writeln!(text, "… and {} more", commits.len() - COMMITS_MAX).expect("write to String");
    }
    text.trim_end().clone_into(&mut m.description);
    m.author = s(p, "/sender/login").or_else(|| s(p, "/pusher/name")).map(str::to_owned);
    m.author_url = s(p, "/sender/html_url").map(str::to_owned);
    m.fields.push(chorus_core::Field { name: capitalise(kind), value: format!("`{name}`"), inline: true });
    m
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn labels(v: &Value) -> Option<String> {
    let names: Vec<&str> = v.as_array()?.iter().filter_map(|l| s(l, "/name")).collect();
    (!names.is_empty()).then(|| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" "))
}

fn pull_request(p: &Value, action: &str) -> Message {
    let pr = &p["pull_request"];
    let number = n(p, "/number").or_else(|| n(pr, "/number")).unwrap_or_default();
    let merged = pr["merged"].as_bool().unwrap_or(false);
    let verb = match action {
        "closed" if merged => "merged",
        "review_requested" => "review requested",
        "ready_for_review" => "ready for review",
        "synchronize" => "updated",
        other => other,
    };
    let title = s(pr, "/title").unwrap_or("");
    let mut m = base(p, format!("Pull request #{number} {verb}: {title}"), s(pr, "/html_url"));
    m.color = Some(match action {
        "opened" | "reopened" | "ready_for_review" => color::GREEN,
        "closed" if merged => color::PURPLE,
        "closed" => color::RED,
        _ => color::BLUE,
    });
    if matches!(action, "opened" | "reopened" | "ready_for_review") {
        m.description = body(s(pr, "/body"));
    }
    if let (Some(head), Some(base_ref)) = (s(pr, "/head/ref"), s(pr, "/base/ref")) {
        m = m.field("Branches", format!("`{head}` → `{base_ref}`"), true);
    }
    if let (Some(files), Some(add), Some(del)) =
        (n(pr, "/changed_files"), n(pr, "/additions"), n(pr, "/deletions"))
    {
        let files = plural(files.parse().unwrap_or(0), "file", "files");
        m = m.field("Changes", format!("{files} (+{add} −{del})"), true);
    }
    if action == "labeled" {
        if let Some(l) = s(p, "/label/name") {
            m = m.field("Label", format!("`{l}`"), true);
        }
    } else if let Some(l) = labels(&pr["labels"]) {
        m = m.field("Labels", l, true);
    }
    if action == "review_requested"
        && let Some(who) = s(p, "/requested_reviewer/login").or_else(|| s(p, "/requested_team/name"))
    {
        m = m.field("Reviewer", who, true);
    }
    m
}

fn review(p: &Value) -> Message {
    let pr = &p["pull_request"];
    let state = s(p, "/review/state").unwrap_or("submitted").to_lowercase().replace('_', " ");
    let mut m = base(
        p,
        format!(
            "Review {state} on #{}: {}",
            n(pr, "/number").unwrap_or_default(),
            s(pr, "/title").unwrap_or("")
        ),
        s(p, "/review/html_url").or_else(|| s(pr, "/html_url")),
    );
    m.color = Some(match state.as_str() {
        "approved" => color::GREEN,
        "changes requested" => color::RED,
        _ => color::GREY,
    });
    m.description = body(s(p, "/review/body"));
    m
}

fn review_comment(p: &Value) -> Message {
    let pr = &p["pull_request"];
    let mut m = base(
        p,
        format!(
            "New review comment on #{}: {}",
            n(pr, "/number").unwrap_or_default(),
            s(pr, "/title").unwrap_or("")
        ),
        s(p, "/comment/html_url"),
    );
    m.description = body(s(p, "/comment/body"));
    if let Some(path) = s(p, "/comment/path") {
        m = m.field("File", format!("`{path}`"), true);
    }
    m
}

fn issues(p: &Value, action: &str) -> Message {
    let issue = &p["issue"];
    let mut m = base(
        p,
        format!(
            "Issue #{} {action}: {}",
            n(issue, "/number").unwrap_or_default(),
            s(issue, "/title").unwrap_or("")
        ),
        s(issue, "/html_url"),
    );
    m.color = Some(match action {
        "opened" | "reopened" => color::GREEN,
        "closed" => color::RED,
        _ => color::BLUE,
    });
    if matches!(action, "opened" | "reopened") {
        m.description = body(s(issue, "/body"));
    }
    match action {
        "labeled" | "unlabeled" => {
            if let Some(l) = s(p, "/label/name") {
                m = m.field("Label", format!("`{l}`"), true);
            }
        }
        "assigned" | "unassigned" => {
            if let Some(a) = s(p, "/assignee/login") {
                m = m.field("Assignee", a, true);
            }
        }
        _ => {
            if let Some(l) = labels(&issue["labels"]) {
                m = m.field("Labels", l, true);
            }
        }
    }
    m
}

fn issue_comment(p: &Value) -> Message {
    let issue = &p["issue"];
    let what = if issue.get("pull_request").is_some() { "pull request" } else { "issue" };
    let mut m = base(
        p,
        format!(
            "New comment on {what} #{}: {}",
            n(issue, "/number").unwrap_or_default(),
            s(issue, "/title").unwrap_or("")
        ),
        s(p, "/comment/html_url").or_else(|| s(issue, "/html_url")),
    );
    m.description = body(s(p, "/comment/body"));
    m
}

fn release(p: &Value, action: &str) -> Message {
    let r = &p["release"];
    let name = s(r, "/name").or_else(|| s(r, "/tag_name")).unwrap_or("");
    let mut m = base(p, format!("Release {name} {action}"), s(r, "/html_url"));
    m.color = Some(color::PURPLE);
    m.description = body(s(r, "/body"));
    if let Some(tag) = s(r, "/tag_name") {
        m = m.field("Tag", format!("`{tag}`"), true);
    }
    if r["prerelease"].as_bool() == Some(true) {
        m = m.field("Pre-release", "yes", true);
    }
    m
}

fn outcome(v: &Value) -> &str {
    s(v, "/conclusion").or_else(|| s(v, "/status")).unwrap_or("unknown")
}

fn workflow_run(p: &Value) -> Message {
    let run = &p["workflow_run"];
    let result = outcome(run);
    let name = s(run, "/name").or_else(|| s(p, "/workflow/name")).unwrap_or("workflow");
    let mut m = base(p, format!("Workflow {name} {}", result.replace('_', " ")), s(run, "/html_url"));
    m.color = Some(outcome_color(result));
    if let Some(b) = s(run, "/head_branch") {
        m = m.field("Branch", format!("`{b}`"), true);
    }
    if let Some(e) = s(run, "/event") {
        m = m.field("Trigger", e, true);
    }
    if run["status"] == "completed"
        && let Some(d) = s(run, "/run_started_at")
            .or_else(|| s(run, "/created_at"))
            .and_then(|start| duration_between(start, s(run, "/updated_at")?))
    {
        m = m.field("Duration", d, true);
    }
    if let Some(msg) = s(run, "/head_commit/message") {
        m.description =
            format!("`{}` {}", short_sha(s(run, "/head_sha").unwrap_or("")), truncate(first_line(msg), 100));
    }
    m.subject = subject(p, "run", run);
    m
}

/// One message per run or job, edited as it goes from queued to its result.
fn subject(p: &Value, kind: &str, thing: &Value) -> Option<String> {
    let repo = s(p, "/repository/full_name")?;
    Some(format!("github:{kind}:{repo}:{}", n(thing, "/id")?))
}

fn workflow_job(p: &Value) -> Message {
    let job = &p["workflow_job"];
    let result = outcome(job);
    let name = s(job, "/name").unwrap_or("job");
    let mut m = base(p, format!("Job {name} {}", result.replace('_', " ")), s(job, "/html_url"));
    m.color = Some(outcome_color(result));
    if let Some(w) = s(job, "/workflow_name") {
        m = m.field("Workflow", w, true);
    }
    if let Some(b) = s(job, "/head_branch") {
        m = m.field("Branch", format!("`{b}`"), true);
    }
    if let Some(d) = s(job, "/started_at").and_then(|st| duration_between(st, s(job, "/completed_at")?)) {
        m = m.field("Duration", d, true);
    }
    let failed: Vec<&str> = job["steps"]
        .as_array()
        .map(|steps| {
            steps.iter().filter(|st| st["conclusion"] == "failure").filter_map(|st| s(st, "/name")).collect()
        })
        .unwrap_or_default();
    if !failed.is_empty() {
        m.description = format!("Failed step: {}", failed.join(", "));
    }
    m.subject = subject(p, "job", job);
    m
}

fn check_run(p: &Value) -> Message {
    let run = &p["check_run"];
    let result = outcome(run);
    let mut m = base(
        p,
        format!("Check {} {}", s(run, "/name").unwrap_or("run"), result.replace('_', " ")),
        s(run, "/html_url").or_else(|| s(run, "/details_url")),
    );
    m.color = Some(outcome_color(result));
    if let Some(b) = s(run, "/check_suite/head_branch") {
        m = m.field("Branch", format!("`{b}`"), true);
    }
    if let Some(t) = s(run, "/output/title") {
        m.description = truncate(t, 300);
    }
    m
}

fn check_suite(p: &Value) -> Message {
    let suite = &p["check_suite"];
    let result = outcome(suite);
    let mut m = base(p, format!("Check suite {}", result.replace('_', " ")), None);
    m.color = Some(outcome_color(result));
    if let Some(b) = s(suite, "/head_branch") {
        m = m.field("Branch", format!("`{b}`"), true);
    }
    if let Some(app) = s(suite, "/app/name") {
        m = m.field("App", app, true);
    }
    m
}

fn create_delete(p: &Value, event: &str) -> Message {
    let kind = s(p, "/ref_type").unwrap_or("ref");
    let name = s(p, "/ref").unwrap_or("");
    let verb = if event == "create" { "created" } else { "deleted" };
    let mut m = base(p, format!("{} {name} {verb}", capitalise(kind)), None);
    m.color = Some(if event == "create" { color::GREEN } else { color::RED });
    m
}

fn ping(p: &Value) -> Message {
    let mut m = base(p, "Webhook connected", None);
    m.color = Some(color::GREEN);
    m.description = s(p, "/zen").map(|z| format!("*{z}*")).unwrap_or_default();
    if let Some(events) = p.pointer("/hook/events").and_then(Value::as_array) {
        let list: Vec<&str> = events.iter().filter_map(Value::as_str).collect();
        m = m.field("Events", truncate(&list.join(", "), 1000), false);
    }
    m
}

fn star(p: &Value, action: &str) -> Message {
    let verb = if action == "deleted" { "Star removed" } else { "New star" };
    let mut m = base(p, verb, None);
    if let Some(count) = n(p, "/repository/stargazers_count") {
        m = m.field("Stars", count, true);
    }
    m
}

fn fork(p: &Value) -> Message {
    let mut m =
        base(p, format!("Forked to {}", s(p, "/forkee/full_name").unwrap_or("?")), s(p, "/forkee/html_url"));
    if let Some(count) = n(p, "/repository/forks_count") {
        m = m.field("Forks", count, true);
    }
    m
}

fn commit_comment(p: &Value) -> Message {
    let sha = short_sha(s(p, "/comment/commit_id").unwrap_or(""));
    let mut m = base(p, format!("New comment on commit {sha}"), s(p, "/comment/html_url"));
    m.description = body(s(p, "/comment/body"));
    m
}

fn discussion(p: &Value, action: &str) -> Message {
    let d = &p["discussion"];
    let mut m = base(
        p,
        format!(
            "Discussion #{} {action}: {}",
            n(d, "/number").unwrap_or_default(),
            s(d, "/title").unwrap_or("")
        ),
        s(d, "/html_url"),
    );
    if action == "created" {
        m.description = body(s(d, "/body"));
    }
    if let Some(c) = s(d, "/category/name") {
        m = m.field("Category", c, true);
    }
    m
}

fn discussion_comment(p: &Value) -> Message {
    let d = &p["discussion"];
    let mut m = base(
        p,
        format!(
            "New comment on discussion #{}: {}",
            n(d, "/number").unwrap_or_default(),
            s(d, "/title").unwrap_or("")
        ),
        s(p, "/comment/html_url"),
    );
    m.description = body(s(p, "/comment/body"));
    m
}

fn deployment(p: &Value) -> Message {
    let d = &p["deployment"];
    let mut m = base(p, format!("Deployment to {} created", s(d, "/environment").unwrap_or("?")), None);
    if let Some(r) = s(d, "/ref") {
        m = m.field("Ref", format!("`{r}`"), true);
    }
    m
}

fn deployment_status(p: &Value) -> Message {
    let st = s(p, "/deployment_status/state").unwrap_or("unknown");
    let env =
        s(p, "/deployment_status/environment").or_else(|| s(p, "/deployment/environment")).unwrap_or("?");
    let mut m = base(p, format!("Deployment to {env}: {st}"), s(p, "/deployment_status/target_url"));
    m.color = Some(outcome_color(st));
    m
}
