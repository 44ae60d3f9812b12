//! What a CI run or an alert group says about its subject (a pipeline on a
//! branch, an alert group): failing or passing. Kept per subject so a hook
//! can notify on changes only, and so rules can ask for a failure streak.

use chorus_format::Service;
use serde_json::Value;

/// A subject's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Failed, or an alert fires.
    Failing,
    /// Passed, or an alert resolved.
    Passing,
}

impl Outcome {
    /// `failing` or `passing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failing => "failing",
            Outcome::Passing => "passing",
        }
    }
}

/// What one result means against the last one of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It was passing (or unknown) and now fails: worth saying.
    Broke,
    /// It was failing and now passes: worth saying ("fixed").
    Fixed,
    /// Failing again: news only the first time.
    StillFailing,
    /// Passing again, or a first pass: not news.
    StillPassing,
}

impl Change {
    /// Between the last known result and this one.
    pub fn between(before: Option<Outcome>, now: Outcome) -> Change {
        match (before, now) {
            (Some(Outcome::Failing), Outcome::Failing) => Change::StillFailing,
            (Some(Outcome::Failing), Outcome::Passing) => Change::Fixed,
            (_, Outcome::Failing) => Change::Broke,
            (_, Outcome::Passing) => Change::StillPassing,
        }
    }

    /// Whether a hook that notifies on changes says anything.
    pub fn is_news(self) -> bool {
        matches!(self, Change::Broke | Change::Fixed)
    }
}

fn s<'a>(p: &'a Value, pointer: &str) -> &'a str {
    p.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The subject a finished CI run or an alert notification is about, and
/// its result; `None` for anything else (a run still going, a push).
pub fn outcome_of(service: Service, event_type: &str, p: &Value) -> Option<(String, Outcome)> {
    let (subject, result) = match service {
        Service::Github if event_type.starts_with("workflow_run") => {
            let run = p.get("workflow_run")?;
            let name = run.get("name").and_then(Value::as_str).unwrap_or_else(|| s(p, "/workflow/name"));
            let subject =
                format!("github-run:{}:{name}:{}", s(p, "/repository/full_name"), s(run, "/head_branch"));
            (subject, run.get("conclusion")?.as_str()?)
        }
        Service::Gitlab if p.get("object_kind").and_then(Value::as_str) == Some("pipeline") => {
            let subject = format!(
                "gitlab-pipeline:{}:{}",
                s(p, "/project/path_with_namespace"),
                s(p, "/object_attributes/ref")
            );
            (subject, p.pointer("/object_attributes/status")?.as_str()?)
        }
        Service::CircleCi if event_type == "workflow-completed" => {
            let subject = format!(
                "circleci:{}:{}:{}",
                s(p, "/project/slug"),
                s(p, "/workflow/name"),
                s(p, "/pipeline/vcs/branch")
            );
            (subject, p.pointer("/workflow/status")?.as_str()?)
        }
        Service::Jenkins => {
            let phase = s(p, "/build/phase");
            if !matches!(phase, "COMPLETED" | "FINALIZED" | "FINISHED") {
                return None;
            }
            let subject = format!("jenkins:{}:{}", s(p, "/name"), s(p, "/build/scm/branch"));
            (subject, p.pointer("/build/status")?.as_str()?)
        }
        Service::Alertmanager | Service::Grafana => {
            let subject = format!("alerts:{}", p.get("groupKey")?.as_str()?);
            (subject, p.get("status")?.as_str()?)
        }
        _ => return None,
    };
    let outcome = match result.to_ascii_lowercase().as_str() {
        "success" | "passed" | "resolved" => Outcome::Passing,
        "failure"
        | "failed"
        | "timed_out"
        | "startup_failure"
        | "error"
        | "failing"
        | "timedout"
        | "infrastructure_fail"
        | "unstable"
        | "firing" => Outcome::Failing,
        // Cancelled, skipped, neutral: says nothing about passing or failing.
        _ => return None,
    };
    Some((subject, outcome))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_are_news_once() {
        use Outcome::{Failing, Passing};
        assert_eq!(Change::between(None, Failing), Change::Broke);
        assert_eq!(Change::between(Some(Failing), Failing), Change::StillFailing);
        assert_eq!(Change::between(Some(Failing), Passing), Change::Fixed);
        assert_eq!(Change::between(Some(Passing), Passing), Change::StillPassing);
        assert_eq!(Change::between(None, Passing), Change::StillPassing);
        assert!(Change::Broke.is_news() && Change::Fixed.is_news());
        assert!(!Change::StillFailing.is_news() && !Change::StillPassing.is_news());
    }

    #[test]
    fn subjects_are_per_pipeline_and_branch() {
        let run = |branch: &str, conclusion: &str| {
            json!({"repository": {"full_name": "o/r"},
                   "workflow_run": {"name": "CI", "head_branch": branch, "conclusion": conclusion}})
        };
        let (a, o) = outcome_of(Service::Github, "workflow_run.completed", &run("main", "failure")).unwrap();
        assert_eq!((a.as_str(), o), ("github-run:o/r:CI:main", Outcome::Failing));
        let (b, _) = outcome_of(Service::Github, "workflow_run.completed", &run("dev", "success")).unwrap();
        assert_ne!(a, b);
        assert_eq!(outcome_of(Service::Github, "workflow_run.completed", &run("main", "cancelled")), None);
        let alert = json!({"groupKey": "{}:{alertname=\"X\"}", "status": "resolved", "alerts": []});
        assert_eq!(outcome_of(Service::Alertmanager, "alert.resolved", &alert).unwrap().1, Outcome::Passing);
        let started = json!({"name": "deploy", "build": {"phase": "STARTED"}});
        assert_eq!(outcome_of(Service::Jenkins, "build.started", &started), None);
    }
}
