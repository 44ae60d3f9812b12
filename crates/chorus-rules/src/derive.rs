//! Derived variables: the few facts every rule asks about (who, where,
//! which branch, what state), read from each provider's documented fields
//! so that conditions and templates need not know the payload's shape.

use chorus_core::Source;
use serde_json::{Map, Value, json};

/// What Chorus remembers about the subject of an event across events: the
/// latest review of each reviewer of a pull request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectState {
    /// Reviewer login → latest review state (`approved`,
    /// `changes_requested`, `commented`, `dismissed`).
    pub reviews: Map<String, Value>,
    /// A pipeline's or alert group's last result.
    pub outcome: Option<crate::Outcome>,
    /// Failures in a row, this one included (0 after a pass).
    pub streak: u64,
}

impl SubjectState {
    /// From its stored form.
    pub fn from_value(v: &Value) -> Self {
        let outcome = match v.get("outcome").and_then(Value::as_str) {
            Some("failing") => Some(crate::Outcome::Failing),
            Some("passing") => Some(crate::Outcome::Passing),
            _ => None,
        };
        Self {
            reviews: v.get("reviews").and_then(Value::as_object).cloned().unwrap_or_default(),
            outcome,
            streak: v.get("streak").and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// Its stored form.
    pub fn to_value(&self) -> Value {
        match self.outcome {
            Some(o) => json!({"reviews": self.reviews, "outcome": o.as_str(), "streak": self.streak}),
            None => json!({"reviews": self.reviews}),
        }
    }

    /// Fold a result in; what it means against the one before.
    pub fn record(&mut self, outcome: crate::Outcome) -> crate::Change {
        let change = crate::Change::between(self.outcome, outcome);
        self.streak = if outcome == crate::Outcome::Failing { self.streak + 1 } else { 0 };
        self.outcome = Some(outcome);
        change
    }
}

/// The subject an event is about, when Chorus keeps state for it: a GitHub
/// pull request (`github:<owner>/<repo>#<number>`).
pub fn subject(source: Source, event_type: &str, payload: &Value) -> Option<String> {
    if source != Source::Github {
        return None;
    }
    let family = event_type.split('.').next().unwrap_or_default();
    if !matches!(family, "pull_request" | "pull_request_review" | "pull_request_review_comment") {
        return None;
    }
    let repo = payload.pointer("/repository/full_name")?.as_str()?;
    let number = payload.pointer("/pull_request/number")?.as_u64()?;
    Some(format!("github:{repo}#{number}"))
}

/// Fold this event into its subject's state (a submitted or dismissed review).
pub fn advance(state: &mut SubjectState, event_type: &str, payload: &Value) {
    let Some(login) = payload.pointer("/review/user/login").and_then(Value::as_str) else { return };
    match event_type {
        "pull_request_review.submitted" | "pull_request_review.edited" => {
            let review = payload.pointer("/review/state").and_then(Value::as_str).unwrap_or("commented");
            let review = review.to_ascii_lowercase();
            // A comment-only review does not withdraw an approval or a
            // change request; GitHub counts the latest decisive review.
            let decisive = review != "commented";
            if decisive || !state.reviews.contains_key(login) {
                state.reviews.insert(login.to_owned(), Value::String(review));
            }
        }
        "pull_request_review.dismissed" => {
            state.reviews.insert(login.to_owned(), Value::String("dismissed".into()));
        }
        _ => {}
    }
}

fn s(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn names(list: Option<&Value>, key: &str) -> Vec<Value> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|l| match l {
                    Value::String(s) => Some(Value::String(s.clone())),
                    other => other.get(key).and_then(Value::as_str).map(|s| Value::String(s.to_owned())),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn put(out: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        out.insert(key.to_owned(), Value::String(v));
    }
}

fn branch_of(git_ref: Option<String>) -> Option<String> {
    git_ref.map(|r| r.strip_prefix("refs/heads/").map(str::to_owned).unwrap_or(r))
}

/// The derived variables of one event. Keys present only when the payload
/// has the facts: `author`, `is_bot`, `repo`, `branch`, `url`, `title`,
/// `number`, `status`, `body`, `labels`, `label`, `commit_count`,
/// `latest_commit_message`, `channel`, `text`, `pr` (`status`,
/// `reviews`, `draft`) for pull requests, and `outcome` and `streak`
/// (failures in a row) for finished CI runs and alert notifications.
pub fn derive(source: Source, payload: &Value, state: &SubjectState) -> Map<String, Value> {
    let mut out = Map::new();
    // A pipeline's or alert group's history: "third failure in a row".
    if let Some(o) = state.outcome {
        out.insert("outcome".into(), Value::String(o.as_str().into()));
        out.insert("streak".into(), Value::from(state.streak));
    }
    let p = |ptr: &str| payload.pointer(ptr);
    match source {
        // Gitea and Forgejo payloads follow GitHub's.
        Source::Github | Source::Gitea => github(&mut out, payload, state),
        Source::Gitlab => gitlab(&mut out, payload),
        Source::Jira => jira(&mut out, payload),
        Source::Slack => {
            let event = p("/event").unwrap_or(payload);
            put(&mut out, "author", s(event.get("user")).or_else(|| s(payload.get("user_name"))));
            put(&mut out, "text", s(event.get("text")));
            put(&mut out, "body", s(event.get("text")));
            put(
                &mut out,
                "channel",
                s(event.get("channel_name"))
                    .or_else(|| s(event.get("channel")))
                    .or_else(|| s(p("/channel_id"))),
            );
            let bot = event.get("bot_id").is_some_and(|b| !b.is_null())
                || event.get("subtype").and_then(Value::as_str) == Some("bot_message");
            out.insert("is_bot".into(), Value::Bool(bot));
        }
        Source::Docker => docker(&mut out, payload),
        _ => generic(&mut out, payload),
    }
    out
}

/// A Docker engine event: `container` (its name), `image`, `action`
/// (`die`, `health_status`, …), `exit_code` and `oom` for a container that
/// ended.
fn docker(out: &mut Map<String, Value>, payload: &Value) {
    let p = |ptr: &str| payload.pointer(ptr);
    let kind = s(p("/Type")).unwrap_or_default();
    let name = s(p("/Actor/Attributes/name"));
    if kind == "container" {
        put(out, "container", name.clone());
        put(out, "image", s(p("/Actor/Attributes/image")));
    } else if kind == "image" {
        put(out, "image", name.clone());
    }
    let action = s(p("/Action")).map(|a| a.split(':').next().unwrap_or_default().trim().to_owned());
    put(out, "action", action);
    put(out, "title", name);
    if let Some(code) = s(p("/Actor/Attributes/exitCode")).and_then(|c| c.parse::<i64>().ok()) {
        out.insert("exit_code".into(), Value::from(code));
    }
    if let Some(oom) = p("/Container/State/OOMKilled").and_then(Value::as_bool) {
        out.insert("oom".into(), Value::Bool(oom));
    }
}

fn github(out: &mut Map<String, Value>, payload: &Value, state: &SubjectState) {
    let p = |ptr: &str| payload.pointer(ptr);
    let login = s(p("/sender/login"));
    let bot = p("/sender/type").and_then(Value::as_str) == Some("Bot")
        || login.as_deref().is_some_and(|l| l.ends_with("[bot]"));
    put(out, "author", login.or_else(|| s(p("/pusher/name"))));
    out.insert("is_bot".into(), Value::Bool(bot));
    put(out, "repo", s(p("/repository/full_name")));
    let pr = p("/pull_request");
    let item = p("/issue").or(pr).or_else(|| p("/discussion"));
    let branch = branch_of(s(p("/ref")).filter(|r| !r.starts_with("refs/tags/")))
        .or_else(|| s(p("/pull_request/base/ref")))
        .or_else(|| s(p("/workflow_run/head_branch")))
        .or_else(|| s(p("/workflow_job/head_branch")))
        .or_else(|| s(p("/check_run/check_suite/head_branch")))
        .or_else(|| s(p("/check_suite/head_branch")))
        .or_else(|| s(p("/deployment/ref")));
    put(out, "branch", branch);
    put(
        out,
        "url",
        s(p("/comment/html_url"))
            .or_else(|| s(p("/review/html_url")))
            .or_else(|| item.and_then(|i| s(i.get("html_url"))))
            .or_else(|| s(p("/release/html_url")))
            .or_else(|| s(p("/workflow_run/html_url")))
            .or_else(|| s(p("/workflow_job/html_url")))
            .or_else(|| s(p("/check_run/html_url")))
            .or_else(|| s(p("/compare")))
            .or_else(|| s(p("/repository/html_url"))),
    );
    put(
        out,
        "title",
        item.and_then(|i| s(i.get("title")))
            .or_else(|| s(p("/release/name")).filter(|n| !n.is_empty()))
            .or_else(|| s(p("/release/tag_name")))
            .or_else(|| s(p("/workflow_run/name")))
            .or_else(|| s(p("/workflow_job/name")))
            .or_else(|| s(p("/check_run/name"))),
    );
    if let Some(n) = item.and_then(|i| i.get("number")).filter(|n| n.is_number()) {
        out.insert("number".into(), n.clone());
    }
    put(
        out,
        "status",
        s(p("/workflow_run/conclusion"))
            .or_else(|| s(p("/workflow_run/status")))
            .or_else(|| s(p("/workflow_job/conclusion")))
            .or_else(|| s(p("/workflow_job/status")))
            .or_else(|| s(p("/check_run/conclusion")))
            .or_else(|| s(p("/check_run/status")))
            .or_else(|| s(p("/deployment_status/state")))
            .or_else(|| s(p("/state")))
            .or_else(|| item.and_then(|i| s(i.get("state")))),
    );
    put(
        out,
        "body",
        s(p("/comment/body"))
            .or_else(|| s(p("/review/body")))
            .or_else(|| item.and_then(|i| s(i.get("body"))))
            .or_else(|| s(p("/release/body"))),
    );
    out.insert("labels".into(), Value::Array(names(item.and_then(|i| i.get("labels")), "name")));
    put(out, "label", s(p("/label/name")));
    if let Some(commits) = p("/commits").and_then(Value::as_array) {
        let count = p("/size").and_then(Value::as_u64).unwrap_or(commits.len() as u64);
        out.insert("commit_count".into(), json!(count));
        put(
            out,
            "latest_commit_message",
            s(p("/head_commit/message")).or_else(|| commits.last().and_then(|c| s(c.get("message")))),
        );
    }
    if let Some(pr) = pr {
        let approvals = state.reviews.values().filter(|v| v.as_str() == Some("approved")).count();
        let changes = state.reviews.values().any(|v| v.as_str() == Some("changes_requested"));
        let merged = pr.get("merged").and_then(Value::as_bool) == Some(true) || !pr["merged_at"].is_null();
        let status = if merged {
            "merged"
        } else if pr.get("state").and_then(Value::as_str) == Some("closed") {
            "closed"
        } else if changes {
            "changes_requested"
        } else if approvals > 0 {
            "approved"
        } else {
            "open"
        };
        let draft = pr.get("draft").and_then(Value::as_bool).unwrap_or(false);
        out.insert("pr".into(), json!({"status": status, "reviews": approvals, "draft": draft}));
    }
}

fn gitlab(out: &mut Map<String, Value>, payload: &Value) {
    let p = |ptr: &str| payload.pointer(ptr);
    let attrs = p("/object_attributes");
    let a = |k: &str| attrs.and_then(|o| o.get(k));
    let username = s(p("/user/username")).or_else(|| s(p("/user_username")));
    let bot = username.as_deref().is_some_and(|u| u.ends_with("_bot") || u.ends_with("-bot"))
        || p("/user/bot").and_then(Value::as_bool) == Some(true);
    put(out, "author", username.or_else(|| s(p("/user_name"))));
    out.insert("is_bot".into(), Value::Bool(bot));
    put(out, "repo", s(p("/project/path_with_namespace")));
    let kind = p("/object_kind").and_then(Value::as_str).unwrap_or_default();
    let branch = match kind {
        "push" => branch_of(s(p("/ref"))),
        "merge_request" => s(a("target_branch")),
        "pipeline" | "build" => s(a("ref")).or_else(|| s(p("/ref"))),
        "note" => s(p("/merge_request/target_branch")),
        _ => s(a("ref")).or_else(|| s(a("target_branch"))),
    };
    put(out, "branch", branch);
    put(out, "url", s(a("url")).or_else(|| s(p("/project/web_url"))));
    put(
        out,
        "title",
        s(a("title"))
            .or_else(|| s(p("/issue/title")))
            .or_else(|| s(p("/merge_request/title")))
            .or_else(|| s(a("name"))),
    );
    if let Some(n) = a("iid").or_else(|| p("/issue/iid")).or_else(|| p("/merge_request/iid")) {
        out.insert("number".into(), n.clone());
    }
    put(out, "status", s(a("status")).or_else(|| s(a("state"))).or_else(|| s(p("/build_status"))));
    put(out, "body", s(a("note")).or_else(|| s(a("description"))));
    out.insert("labels".into(), Value::Array(names(p("/labels"), "title")));
    if kind == "push" || kind == "tag_push" {
        let commits = p("/commits").and_then(Value::as_array);
        let count = p("/total_commits_count").and_then(Value::as_u64).or(commits.map(|c| c.len() as u64));
        if let Some(count) = count {
            out.insert("commit_count".into(), json!(count));
        }
        put(out, "latest_commit_message", commits.and_then(|c| c.last()).and_then(|c| s(c.get("message"))));
    }
}

fn jira(out: &mut Map<String, Value>, payload: &Value) {
    let p = |ptr: &str| payload.pointer(ptr);
    let f = |k: &str| p("/issue/fields").and_then(|o| o.get(k));
    put(
        out,
        "author",
        s(p("/user/displayName"))
            .or_else(|| s(p("/user/name")))
            .or_else(|| s(p("/comment/author/displayName"))),
    );
    let bot = p("/user/accountType").and_then(Value::as_str) == Some("app");
    out.insert("is_bot".into(), Value::Bool(bot));
    put(out, "repo", s(f("project").and_then(|pr| pr.get("key"))));
    put(out, "title", s(f("summary")));
    put(out, "number", s(p("/issue/key")));
    put(out, "status", s(f("status").and_then(|st| st.get("name"))));
    put(out, "body", s(p("/comment/body")).or_else(|| s(f("description"))));
    out.insert("labels".into(), Value::Array(names(f("labels"), "name")));
    // The browse link: the site is the part of the issue's REST URL before
    // `/rest/api/`.
    let browse = s(p("/issue/self"))
        .zip(s(p("/issue/key")))
        .and_then(|(url, key)| url.find("/rest/api/").map(|i| format!("{}/browse/{key}", &url[..i])));
    put(out, "url", browse);
}

fn generic(out: &mut Map<String, Value>, payload: &Value) {
    let first = |keys: &[&str]| keys.iter().find_map(|k| s(payload.get(*k)).filter(|v| !v.is_empty()));
    put(out, "title", first(&["title", "summary", "subject", "message", "name"]));
    put(out, "status", first(&["status", "state", "result", "level"]));
    put(out, "url", first(&["url", "html_url", "link", "web_url"]));
    let author = first(&["author", "user", "sender", "username"]).or_else(|| {
        ["author", "user", "sender"].iter().find_map(|k| {
            let o = payload.get(*k)?;
            s(o.get("login")).or_else(|| s(o.get("username"))).or_else(|| s(o.get("name")))
        })
    });
    put(out, "author", author);
    put(out, "body", first(&["body", "text", "description", "message"]));
    put(out, "branch", branch_of(first(&["branch", "ref"])));
    put(out, "text", first(&["text", "message"]));
}

/// For Jira: `issue.summary` and the other fields also at `issue.<field>`,
/// as users (and seed examples) write them; the payload's own keys win.
pub(crate) fn lift_jira_fields(payload: &mut Value) {
    let Some(issue) = payload.get_mut("issue").and_then(Value::as_object_mut) else { return };
    let Some(fields) = issue.get("fields").and_then(Value::as_object).cloned() else { return };
    for (k, v) in fields {
        issue.entry(k).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_status_follows_reviews() {
        let mut state = SubjectState::default();
        let review = |login: &str, st: &str| json!({"review": {"user": {"login": login}, "state": st}, "pull_request": {"number": 1, "state": "open"}});
        advance(&mut state, "pull_request_review.submitted", &review("a", "approved"));
        let d = derive(Source::Github, &review("a", "approved"), &state);
        assert_eq!(d["pr"], json!({"status": "approved", "reviews": 1, "draft": false}));
        advance(&mut state, "pull_request_review.submitted", &review("a", "commented"));
        advance(&mut state, "pull_request_review.submitted", &review("b", "approved"));
        let d = derive(Source::Github, &review("b", "approved"), &state);
        assert_eq!(d["pr"]["reviews"], 2);
        advance(&mut state, "pull_request_review.submitted", &review("c", "changes_requested"));
        let d = derive(Source::Github, &review("c", "x"), &state);
        assert_eq!(d["pr"]["status"], "changes_requested");
    }

    #[test]
    fn bots_are_recognised() {
        let d = derive(
            Source::Github,
            &json!({"sender": {"login": "dependabot[bot]", "type": "User"}}),
            &SubjectState::default(),
        );
        assert_eq!(d["is_bot"], true);
        let d = derive(
            Source::Github,
            &json!({"sender": {"login": "octo", "type": "User"}}),
            &SubjectState::default(),
        );
        assert_eq!(d["is_bot"], false);
    }
}
