//! Custom message templates (minijinja), bounded by fuel.

use chorus_core::Message;
use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde_json::Value;

/// Instructions a template may execute; a loop over a large payload fits,
/// a runaway loop does not.
const FUEL: u64 = 50_000;
/// Longest template accepted.
pub const TEMPLATE_MAX: usize = 4_000;

/// A template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Longer than [`TEMPLATE_MAX`].
    #[error("template is longer than {TEMPLATE_MAX} characters")]
    TooLong,
    /// Syntax error, runaway execution, or a failing filter.
    #[error("{0}")]
    Render(#[from] minijinja::Error),
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

/// Check a template compiles (at hook creation, not at delivery).
pub fn validate_template(template: &str) -> Result<(), TemplateError> {
    if template.len() > TEMPLATE_MAX {
        return Err(TemplateError::TooLong);
    }
    env().template_from_str(template)?;
    Ok(())
}

/// Render `template` against a payload. The template sees the payload's
/// top-level keys, `payload` (the whole body) and `event` (the event type,
/// unless the payload has its own `event` key).
pub fn render_template(template: &str, event_type: &str, payload: &Value) -> Result<Message, TemplateError> {
    if template.len() > TEMPLATE_MAX {
        return Err(TemplateError::TooLong);
    }
    let mut ctx = serde_json::Map::new();
    ctx.insert("event".into(), Value::String(event_type.to_owned()));
    ctx.insert("payload".into(), payload.clone());
    if let Value::Object(top) = payload {
        for (k, v) in top {
            ctx.insert(k.clone(), v.clone());
        }
    }
    let text = render_context(template, &Value::Object(ctx))?;
    Ok(Message { description: text, footer: Some(event_type.to_owned()), ..Message::default() })
}

/// Render `template` against a prepared context (a rule's: the payload
/// with derived variables), trimmed.
pub fn render_context(template: &str, ctx: &Value) -> Result<String, TemplateError> {
    if template.len() > TEMPLATE_MAX {
        return Err(TemplateError::TooLong);
    }
    let env = env();
    let text = env.template_from_str(template)?.render(Serde(ctx))?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_seed_example() {
        let m = render_template(
            "🔔 {{event}}: {{message}}",
            "webhook",
            &json!({"event": "Server Alert", "message": "CPU usage at 95%"}),
        )
        .unwrap();
        assert_eq!(m.description, "🔔 Server Alert: CPU usage at 95%");
    }

    #[test]
    fn nested_and_missing_values() {
        let m = render_template(
            "{{ issue.title }}|{{ nope.deeper }}|{{ event }}",
            "issues.opened",
            &json!({"issue": {"title": "Bug"}}),
        )
        .unwrap();
        assert_eq!(m.description, "Bug||issues.opened");
    }

    #[test]
    fn runaway_templates_stop() {
        let err = render_template(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "e",
            &json!({}),
        );
        assert!(err.is_err());
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(validate_template("{{ unclosed").is_err());
        assert!(validate_template("{{ fine }}").is_ok());
        assert!(matches!(validate_template(&"x".repeat(TEMPLATE_MAX + 1)), Err(TemplateError::TooLong)));
    }
}
