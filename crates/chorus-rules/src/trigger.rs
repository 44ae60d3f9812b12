//! Triggers: which event types fire a rule.
//!
//! A trigger is an event type (`issues.opened`), a family (`issues`, which
//! fires on every `issues.*`), or a glob where `*` stands for any run of
//! characters (`pull_request.*`, `jira:issue_*`, `*`). Event types are the
//! ones Chorus assigns per provider (see [`event_types`]), which are the
//! providers' own names: `jira:issue_created`, `message.channels`.

use chorus_core::Source;

use crate::RuleError;

/// Longest trigger accepted.
const TRIGGER_MAX: usize = 100;

/// Whether `trigger` fires on `event_type` (chorus-core's one grammar).
pub fn matches(trigger: &str, event_type: &str) -> bool {
    chorus_core::event_matches(trigger, event_type)
}

/// The event families Chorus assigns for `source` (its descriptor's), or
/// `None` where the sender names its own events.
pub fn event_types(source: Source) -> Option<&'static [&'static str]> {
    chorus_providers::of(source).event_families()
}

/// Check a trigger for a hook of `source`: well-formed, and able to match
/// some event type that source sends.
pub fn check(trigger: &str, source: Source) -> Result<(), RuleError> {
    if trigger.is_empty()
        || trigger.len() > TRIGGER_MAX
        || trigger.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RuleError::new("trigger", format!("{trigger:?} is not an event type or pattern")));
    }
    let Some(known) = event_types(source) else { return Ok(()) };
    if source == Source::Slack && trigger.starts_with('/') {
        return Ok(());
    }
    let possible = if trigger.contains('*') {
        // A glob can match when some family could begin what it requires
        // before its first wildcard.
        let head = &trigger[..trigger.find('*').unwrap_or(0)];
        known.iter().any(|family| family.starts_with(head) || head.starts_with(family))
    } else {
        let family = family_of(trigger, source);
        known.contains(&family)
    };
    if possible {
        Ok(())
    } else {
        Err(RuleError::new(
            "trigger",
            format!(
                "trigger {trigger:?} can never match: {source} sends event types such as {}",
                known.iter().take(4).copied().collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

/// The family part of an event type: before the first dot (Jira's names
/// have no dots but a `jira:` prefix, and are families themselves).
fn family_of(event_type: &str, source: Source) -> &str {
    match source {
        Source::Jira => event_type,
        _ => event_type.split('.').next().unwrap_or(event_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_family_and_globs() {
        assert!(matches("issues.opened", "issues.opened"));
        assert!(matches("issues", "issues.opened"));
        assert!(!matches("issues", "issue_comment.created"));
        assert!(matches("pull_request.*", "pull_request.opened"));
        assert!(!matches("pull_request.*", "pull_request_review.submitted"));
        assert!(matches("*", "push"));
        assert!(matches("jira:issue_*", "jira:issue_updated"));
        assert!(matches("message.channels", "message.channels"));
        assert!(matches("message", "message.channels"));
        assert!(matches("*.closed", "issues.closed"));
        assert!(!matches("*.closed", "issues.opened"));
        assert!(matches("a*b*c", "aXbYc"));
        assert!(!matches("a*b*c", "aXbY"));
    }

    #[test]
    fn triggers_that_cannot_match_their_source_are_refused() {
        assert!(check("issues.opened", Source::Github).is_ok());
        assert!(check("pull_request.*", Source::Github).is_ok());
        assert!(check("*", Source::Github).is_ok());
        assert!(check("jira:issue_created", Source::Jira).is_ok());
        assert!(check("message.channels", Source::Slack).is_ok());
        assert!(check("merge_request", Source::Gitlab).is_ok());
        let e = check("jira:issue_created", Source::Github).unwrap_err();
        assert_eq!(e.field, "trigger");
        assert!(check("issues.opened", Source::Jira).is_err());
        assert!(check("pipline", Source::Gitlab).is_err());
        assert!(check("has space", Source::Generic).is_err());
        assert!(check("anything.goes", Source::Generic).is_ok());
    }
}
