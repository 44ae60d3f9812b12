//! Templates in step arguments and `when` expressions, over the run's
//! context (`payload`, `previous_output`, `steps.<name>.output`, `run`),
//! bounded by minijinja's fuel.

use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde_json::Value;

/// Instructions one rendering may execute.
const FUEL: u64 = 50_000;
/// Longest template or expression accepted.
const SOURCE_MAX: usize = 10_000;
/// Longest text a template may produce.
const OUTPUT_MAX: usize = 1 << 20;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // `{{ payload.missing.field }}` renders empty rather than failing the
    // step: senders leave fields out.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

/// A minijinja error in one line, with where it is.
fn describe(e: &minijinja::Error) -> String {
    let what = e.detail().map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(line) => format!("{what} (line {line})"),
        None => what,
    }
}

/// Whether `s` holds template syntax at all.
fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// `Some(expr)` when the whole of `s` is one `{{ expr }}`: it renders to
/// the expression's value itself (an object stays an object).
fn lone_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then(|| inner.trim())
}

/// A checked template string.
#[derive(Debug, Clone)]
pub struct Template;

impl Template {
    /// Check that `source` compiles (plain text always does).
    pub fn compile(source: &str) -> Result<Template, String> {
        if !is_template(source) {
            return Ok(Template);
        }
        if source.len() > SOURCE_MAX {
            return Err(format!("a template is at most {SOURCE_MAX} characters"));
        }
        let env = env();
        match lone_expression(source) {
            Some(expr) => env.compile_expression(expr).map(|_| ()).map_err(|e| describe(&e))?,
            None => env.template_from_str(source).map(|_| ()).map_err(|e| describe(&e))?,
        }
        Ok(Template)
    }
}

/// Render every template string in `v` against `ctx`.
pub fn render(v: &Value, ctx: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) if is_template(s) => render_str(s, ctx),
        Value::Array(items) => {
            items.iter().map(|i| render(i, ctx)).collect::<Result<_, _>>().map(Value::Array)
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, i)| Ok((k.clone(), render(i, ctx)?)))
            .collect::<Result<_, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn render_str(s: &str, ctx: &Value) -> Result<Value, String> {
    let env = env();
    if let Some(expr) = lone_expression(s) {
        let compiled = env.compile_expression(expr).map_err(|e| describe(&e))?;
        let value = compiled.eval(Serde(ctx)).map_err(|e| describe(&e))?;
        if value.is_undefined() || value.is_none() {
            return Ok(Value::Null);
        }
        return serde_json::to_value(&value).map_err(|e| e.to_string());
    }
    let text = env.render_str(s, Serde(ctx)).map_err(|e| describe(&e))?;
    if text.len() > OUTPUT_MAX {
        return Err(format!("rendered text is over {OUTPUT_MAX} bytes"));
    }
    Ok(Value::String(text))
}

/// A checked `when` expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
}

impl Expr {
    /// Compile `source`.
    pub fn compile(source: &str) -> Result<Expr, String> {
        if source.trim().is_empty() || source.len() > SOURCE_MAX {
            return Err(format!("an expression is 1 to {SOURCE_MAX} characters"));
        }
        env().compile_expression(source).map_err(|e| describe(&e))?;
        Ok(Expr { source: source.to_owned() })
    }

    /// Evaluate against `ctx`; truthiness decides.
    pub fn eval(&self, ctx: &Value) -> Result<bool, String> {
        let env = env();
        let expr = env.compile_expression(&self.source).map_err(|e| describe(&e))?;
        expr.eval(Serde(ctx)).map(|v| v.is_true()).map_err(|e| describe(&e))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lone_expressions_keep_their_type_and_text_renders() {
        let ctx = json!({"payload": {"ref": "refs/heads/main", "n": 3}, "steps": {"fetch": {"output": {"status": 200}}}});
        assert_eq!(render(&json!("{{ payload.n }}"), &ctx).unwrap(), json!(3));
        assert_eq!(render(&json!("{{ payload }}"), &ctx).unwrap(), ctx["payload"]);
        assert_eq!(render(&json!("ref={{ payload.ref }}"), &ctx).unwrap(), json!("ref=refs/heads/main"));
        assert_eq!(
            render(&json!({"a": ["{{ steps.fetch.output.status }}"]}), &ctx).unwrap(),
            json!({"a": [200]})
        );
        assert_eq!(render(&json!("{{ payload.missing.deeper }}"), &ctx).unwrap(), json!(null));
        assert_eq!(render(&json!("plain {text"), &ctx).unwrap(), json!("plain {text"));
    }

    #[test]
    fn broken_templates_and_expressions_are_refused() {
        assert!(Template::compile("{{ payload.ref ").is_err());
        assert!(Template::compile("{% if x %}no end").is_err());
        assert!(Template::compile("{{ a }} and {{ b }}").is_ok());
        assert!(Expr::compile("payload.status ==").is_err());
        let e = Expr::compile("payload.status == 'success'").unwrap();
        assert!(e.eval(&json!({"payload": {"status": "success"}})).unwrap());
        assert!(!e.eval(&json!({"payload": {}})).unwrap());
    }
}
