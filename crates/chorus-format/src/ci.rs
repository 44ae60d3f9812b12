//! CI systems beside GitHub Actions and GitLab CI: Jenkins (Notification
//! plugin) and CircleCI webhooks. Seed 002's shape: "Pipeline Started",
//! "Pipeline Passed", "Pipeline Failed" with the job, branch and commit.

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, duration_between, human_secs, n, outcome_color, s, short_sha, truncate};

/// Jenkins Notification plugin: `{"name", "url", "build": {"phase", "status", …}}`.
pub(crate) fn jenkins(event_type: &str, p: &Value) -> Option<Message> {
    let build = p.get("build")?;
    let job = s(p, "/display_name").or_else(|| s(p, "/name")).unwrap_or("job");
    let number = n(build, "/number").map(|n| format!(" #{n}")).unwrap_or_default();
    let phase = s(build, "/phase").unwrap_or("").to_ascii_uppercase();
    let status = s(build, "/status").map(str::to_ascii_uppercase);
    let (head, colour) = match (phase.as_str(), status.as_deref()) {
        ("QUEUED", _) => ("Pipeline Queued", color::GREY),
        ("STARTED", _) => ("Pipeline Started", color::BLUE),
        (_, Some("SUCCESS")) => ("Pipeline Passed", color::GREEN),
        (_, Some("FAILURE")) => ("Pipeline Failed", color::RED),
        (_, Some("UNSTABLE")) => ("Pipeline Unstable", color::YELLOW),
        (_, Some("ABORTED")) => ("Pipeline Aborted", color::GREY),
        ("COMPLETED" | "FINALIZED" | "FINISHED", _) => ("Pipeline Finished", color::GREY),
        _ => ("Pipeline", color::GREY),
    };
    let mut m = Message::titled(format!("{head}: {job}{number}"));
    m.color = Some(colour);
    m.url = s(build, "/full_url").filter(|u| u.starts_with("http")).map(str::to_owned);
    let branch = s(build, "/scm/branch");
    let commit = s(build, "/scm/commit");
    let mut lines = Vec::new();
    if let Some(st) = &status {
        lines.push(format!("Result: **{st}**"));
    }
    if let Some(b) = branch {
        lines.push(format!("Branch: `{}`", b.trim_start_matches("origin/")));
    }
    if let Some(c) = commit {
        lines.push(format!("Commit: `{}`", short_sha(c)));
    }
    if let Some(d) = build.get("duration").and_then(Value::as_i64).filter(|d| *d > 0) {
        lines.push(format!("Took {}", human_secs(d / 1000)));
    }
    if let Some(log) = s(build, "/log").filter(|l| !l.trim().is_empty()) {
        let tail: Vec<&str> = log.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
        lines.push(format!("```\n{}\n```", truncate(&tail.join("\n"), 800)));
    }
    m.description = lines.join("\n");
    m.footer = Some(format!("Jenkins · {event_type}"));
    // The plugin names a build by its job and number; one message follows
    // it from queued to finalized.
    m.subject = n(build, "/number").map(|number| format!("jenkins:{}:{number}", s(p, "/url").unwrap_or(job)));
    Some(m)
}

/// CircleCI webhooks: `workflow-completed` and `job-completed`.
pub(crate) fn circleci(event_type: &str, p: &Value) -> Option<Message> {
    let kind = s(p, "/type")?;
    let project = s(p, "/project/name").or_else(|| s(p, "/project/slug")).unwrap_or("project");
    let (subject, status, url) = match kind {
        "job-completed" => {
            let job = p.get("job")?;
            (format!("job {}", s(job, "/name").unwrap_or("job")), s(job, "/status"), s(p, "/workflow/url"))
        }
        _ => {
            let wf = p.get("workflow")?;
            (format!("workflow {}", s(wf, "/name").unwrap_or("workflow")), s(wf, "/status"), s(wf, "/url"))
        }
    };
    let status = status.unwrap_or("unknown");
    let head = match status {
        "success" => "Pipeline Passed",
        "failed" | "error" | "failing" | "infrastructure_fail" | "timedout" => "Pipeline Failed",
        "canceled" | "cancelled" | "unauthorized" => "Pipeline Canceled",
        "on_hold" | "needs_approval" => "Pipeline On Hold",
        _ => "Pipeline",
    };
    let mut m = Message::titled(format!("[{project}] {head}: {subject}"));
    m.color = Some(match status {
        "on_hold" | "needs_approval" => color::YELLOW,
        other => outcome_color(other),
    });
    m.url = url.map(str::to_owned);
    let mut lines = vec![format!("Status: **{status}**")];
    if let Some(b) = s(p, "/pipeline/vcs/branch") {
        lines.push(format!("Branch: `{b}`"));
    }
    if let Some(tag) = s(p, "/pipeline/vcs/tag") {
        lines.push(format!("Tag: `{tag}`"));
    }
    if let Some(rev) = s(p, "/pipeline/vcs/revision") {
        let subject = s(p, "/pipeline/vcs/commit/subject")
            .map(|c| format!(" {}", truncate(c, 120)))
            .unwrap_or_default();
        lines.push(format!("Commit: `{}`{subject}", short_sha(rev)));
    }
    let (start, stop) = match kind {
        "job-completed" => (s(p, "/job/started_at"), s(p, "/job/stopped_at")),
        _ => (s(p, "/workflow/created_at"), s(p, "/workflow/stopped_at")),
    };
    if let (Some(a), Some(b)) = (start, stop)
        && let Some(d) = duration_between(a, b)
    {
        lines.push(format!("Took {d}"));
    }
    m.description = lines.join("\n");
    m.author = s(p, "/pipeline/vcs/commit/author/name").map(str::to_owned);
    m.footer = Some(format!("CircleCI · {event_type}"));
    // CircleCI reports jobs and workflows only as they complete: one message
    // per workflow shows each job's result, then the workflow's.
    m.subject = s(p, "/workflow/id").map(|id| format!("circleci:workflow:{id}"));
    Some(m)
}
