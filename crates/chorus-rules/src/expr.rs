//! `if` expressions (minijinja), bounded by fuel.

use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde_json::Value;

/// Instructions one evaluation may execute.
const FUEL: u64 = 10_000;
/// Longest expression accepted.
const EXPR_MAX: usize = 1_000;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // `pr.reviews >= 2` on an event without a pull request is false, not an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

/// A checked expression.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    source: String,
}

impl Expr {
    /// Compile `source`; the error names the position of a syntax error.
    pub(crate) fn compile(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() || source.len() > EXPR_MAX {
            return Err(format!("an expression is 1 to {EXPR_MAX} characters"));
        }
        let env = env();
        env.compile_expression(source).map_err(|e| describe(&e, source))?;
        Ok(Self { source: source.to_owned() })
    }

    /// Evaluate against `ctx`; truthiness decides.
    pub(crate) fn eval(&self, ctx: &Value) -> Result<bool, String> {
        let env = env();
        let expr = env.compile_expression(&self.source).map_err(|e| describe(&e, &self.source))?;
        expr.eval(Serde(ctx)).map(|v| v.is_true()).map_err(|e| describe(&e, &self.source))
    }
}

/// A minijinja error in one line, with the column where it has one.
pub(crate) fn describe(e: &minijinja::Error, source: &str) -> String {
    let what = e.detail().map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.range() {
        Some(r) => {
            let before = &source[..r.start.min(source.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{what} (line {line}, column {column})")
        }
        None => match e.line() {
            Some(line) => format!("{what} (line {line})"),
            None => what,
        },
    }
}
