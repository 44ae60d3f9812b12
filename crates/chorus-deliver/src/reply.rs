//! Writing back to a hook's source: where a comment on an event's thread
//! goes (the issue, pull request, merge request or Jira issue), and how
//! each provider's API is called.

use chorus_core::{ReplyConfig, Source};
use serde_json::{Value, json};

/// A comment to post: the API path under the hook's reply base, and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    /// e.g. `/repos/octo/app/issues/12/comments`.
    pub path: String,
    /// The JSON body.
    pub body: Value,
}

/// Sources whose events Chorus can comment back on.
pub fn can_comment(source: Source) -> bool {
    matches!(source, Source::Github | Source::Gitlab | Source::Jira)
}

/// Where a comment on this event's thread goes, or why there is none.
pub fn comment(source: Source, payload: &Value, text: &str) -> Result<Comment, String> {
    let p = |ptr: &str| payload.pointer(ptr);
    let path = match source {
        Source::Github => {
            let repo =
                p("/repository/full_name").and_then(Value::as_str).ok_or("the event names no repository")?;
            // Pull requests take their conversation comments on the issues API.
            let number = p("/issue/number")
                .or_else(|| p("/pull_request/number"))
                .or_else(|| p("/discussion/number"))
                .and_then(Value::as_u64)
                .ok_or("this event has no issue or pull request to comment on")?;
            format!("/repos/{repo}/issues/{number}/comments")
        }
        Source::Gitlab => {
            let project = p("/project/id").and_then(Value::as_u64).ok_or("the event names no project")?;
            let kind = p("/object_kind").and_then(Value::as_str).unwrap_or_default();
            let attrs_iid = p("/object_attributes/iid").and_then(Value::as_u64);
            let (what, iid) = match kind {
                "issue" | "work_item" => ("issues", attrs_iid),
                "merge_request" => ("merge_requests", attrs_iid),
                "note" => match p("/object_attributes/noteable_type").and_then(Value::as_str) {
                    Some("Issue") => ("issues", p("/issue/iid").and_then(Value::as_u64)),
                    Some("MergeRequest") => {
                        ("merge_requests", p("/merge_request/iid").and_then(Value::as_u64))
                    }
                    _ => ("", None),
                },
                _ => ("", None),
            };
            let iid = iid.ok_or("this event has no issue or merge request to comment on")?;
            format!("/projects/{project}/{what}/{iid}/notes")
        }
        Source::Jira => {
            let key = p("/issue/key")
                .and_then(Value::as_str)
                .ok_or("this event has no Jira issue to comment on")?;
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("{key:?} is not a Jira issue key"));
            }
            format!("/rest/api/2/issue/{key}/comment")
        }
        other => return Err(format!("Chorus cannot comment back on {other} events")),
    };
    Ok(Comment { path, body: json!({"body": text}) })
}

/// The authentication headers a provider's API expects.
pub(crate) fn auth_headers(source: Source, reply: &ReplyConfig) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let token = reply.token.expose();
    match (source, &reply.email) {
        (Source::Github, _) => vec![
            ("authorization", format!("Bearer {token}")),
            ("accept", "application/vnd.github+json".into()),
            ("x-github-api-version", "2022-11-28".into()),
        ],
        (Source::Gitlab, _) => vec![("private-token", token.to_owned())],
        (Source::Jira, Some(email)) => vec![(
            "authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"))),
        )],
        _ => vec![("authorization", format!("Bearer {token}"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_per_provider() {
        let gh = json!({"repository": {"full_name": "o/r"}, "issue": {"number": 7}});
        assert_eq!(comment(Source::Github, &gh, "hi").unwrap().path, "/repos/o/r/issues/7/comments");
        let pr = json!({"repository": {"full_name": "o/r"}, "pull_request": {"number": 9}});
        assert_eq!(comment(Source::Github, &pr, "hi").unwrap().path, "/repos/o/r/issues/9/comments");
        assert!(comment(Source::Github, &json!({"repository": {"full_name": "o/r"}}), "x").is_err());
        let mr =
            json!({"object_kind": "merge_request", "project": {"id": 3}, "object_attributes": {"iid": 4}});
        assert_eq!(comment(Source::Gitlab, &mr, "x").unwrap().path, "/projects/3/merge_requests/4/notes");
        let note = json!({"object_kind": "note", "project": {"id": 3},
                          "object_attributes": {"noteable_type": "Issue"}, "issue": {"iid": 5}});
        assert_eq!(comment(Source::Gitlab, &note, "x").unwrap().path, "/projects/3/issues/5/notes");
        let jira = json!({"issue": {"key": "ABC-12"}});
        assert_eq!(comment(Source::Jira, &jira, "x").unwrap().path, "/rest/api/2/issue/ABC-12/comment");
        assert!(comment(Source::Jira, &json!({"issue": {"key": "../x"}}), "x").is_err());
        assert!(comment(Source::Slack, &json!({}), "x").is_err());
    }
}
