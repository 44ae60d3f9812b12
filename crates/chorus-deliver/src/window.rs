//! Aggregation windows: a hook with `aggregate` holds its events for the
//! window and posts one summary when it ends, grouped as seed 002 shows
//! ("Pushes: 3 (main, feature-oauth, dev) · PRs: 1 opened, 2 updated").

use std::fmt::Write as _;

use chorus_core::{Event, IncomingHook, Message};
use serde_json::Value;

/// Titles listed under the counts before "… and N more".
const LISTED_MAX: usize = 20;

/// One family of events in a window.
struct Family {
    name: String,
    count: usize,
    details: Vec<(String, usize)>,
}

/// How a family is named in a summary.
fn family_label(family: &str) -> String {
    match family {
        "push" => "Pushes".into(),
        "pull_request" => "PRs".into(),
        "pull_request_review" => "Reviews".into(),
        "issues" => "Issues".into(),
        "issue_comment" => "Comments".into(),
        "release" => "Releases".into(),
        "workflow_run" => "Workflow runs".into(),
        "merge_request" => "MRs".into(),
        "pipeline" => "Pipelines".into(),
        other => other.replace('_', " "),
    }
}

/// The branch a push went to.
fn branch(payload: &Value) -> Option<String> {
    let r = payload.get("ref")?.as_str()?;
    Some(r.strip_prefix("refs/heads/").or_else(|| r.strip_prefix("refs/tags/")).unwrap_or(r).to_owned())
}

/// One summary of `events`, each already formatted as `messages` (same
/// order), for a window of `hook` of `window_secs`.
pub(crate) fn summary(hook: &IncomingHook, events: &[Event], messages: &[Message]) -> Message {
    // By first appearance: each family's count, and its branches (pushes)
    // or actions, with their counts.
    let mut families: Vec<Family> = Vec::new();
    for event in events {
        let (family, action) = event.event_type.split_once('.').unwrap_or((event.event_type.as_str(), ""));
        let idx = match families.iter().position(|f| f.name == family) {
            Some(i) => i,
            None => {
                families.push(Family { name: family.to_owned(), count: 0, details: Vec::new() });
                families.len() - 1
            }
        };
        let entry = &mut families[idx];
        entry.count += 1;
        let detail = if family == "push" {
            serde_json::from_slice::<Value>(&event.body).ok().and_then(|p| branch(&p))
        } else {
            (!action.is_empty()).then(|| action.replace('_', " "))
        };
        if let Some(d) = detail {
            match entry.details.iter_mut().find(|(k, _)| *k == d) {
                Some((_, n)) => *n += 1,
                None => entry.details.push((d, 1)),
            }
        }
    }
    let counts: Vec<String> = families
        .iter()
        .map(|f| {
            let label = family_label(&f.name);
            let n = f.count;
            if f.details.is_empty() {
                format!("**{label}**: {n}")
            } else if f.name == "push" {
                let names: Vec<&str> = f.details.iter().map(|(b, _)| b.as_str()).collect();
                format!("**{label}**: {n} ({})", names.join(", "))
            } else {
                let parts: Vec<String> = f.details.iter().map(|(a, c)| format!("{c} {a}")).collect();
                format!("**{label}**: {}", parts.join(", "))
            }
        })
        .collect();
    let window = hook.aggregate_secs.map_or_else(String::new, |s| format!(" in {}", human(s)));
    let plural = if events.len() == 1 { "" } else { "s" };
    let mut m = Message::titled(format!("{}: {} event{plural}{window}", hook.name, events.len()));
    let mut text = counts.join(" · ");
    text.push('\n');
    for msg in messages.iter().take(LISTED_MAX) {
        let title = msg.title.replace(['[', ']'], "");
        let title: String = title.chars().take(150).collect();
        match msg.url.as_deref().filter(|u| u.starts_with("http")) {
            Some(u) => {
                let _ = write!(text, "\n- [{title}]({u})");
            }
            None => {
                let _ = write!(text, "\n- {title}");
            }
        }
    }
    if messages.len() > LISTED_MAX {
        let _ = write!(text, "\n… and {} more", messages.len() - LISTED_MAX);
    }
    m.description = text;
    m.color = Some(0x0058_65F2);
    m.footer = Some(format!("{} · {} · summary", hook.source, hook.id));
    m
}

fn human(secs: u32) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
