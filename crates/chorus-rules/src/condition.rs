//! Conditions in seed 001's map form, plus the `if` expression form.
//!
//! Every entry must hold. A value is matched against what the event has:
//! a string (case-insensitive; `*` and `?` glob; a leading `!` negates), a
//! number or boolean (equal), `null` (absent), or a list (any of its items).
//! Where the event has a list (an issue's labels), any of its items may
//! match. `"not": {…}` holds when its map does not.

use chorus_core::glob_matches as glob;
use serde_json::{Map, Value};

use crate::{RuleError, expr::Expr};

/// Most entries of one conditions map, nested `not` maps included.
const CONDITIONS_MAX: usize = 20;
/// Longest value or path.
const TEXT_MAX: usize = 500;

/// What one entry reads from the event.
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    /// `labels`: any of the item's labels.
    Labels,
    /// `label`: the label just added or removed, else any of the item's labels.
    Label,
    /// `body_contains`: a substring of the comment, issue or message text.
    BodyContains,
    /// A derived variable (`author`, `branch`, `channel`, `repository`, …)
    /// or a dotted path into the payload.
    Path(Vec<String>),
}

#[derive(Debug, Clone)]
enum Entry {
    Match { subject: Subject, key: String, want: Value },
    IgnoreBots,
    Not(Conditions),
    If(Expr),
}

/// A compiled conditions map.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    entries: Vec<Entry>,
}

/// Why conditions did not hold, or could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// An entry did not hold: its key.
    Unmet(String),
    /// The expression failed at run time.
    Failed(String),
}

impl Conditions {
    /// Compile a conditions map; errors name the entry (`conditions.label`).
    pub fn parse(map: &Map<String, Value>) -> Result<Self, RuleError> {
        let mut count = 0;
        Self::parse_at(map, "conditions", &mut count)
    }

    fn parse_at(map: &Map<String, Value>, at: &str, count: &mut usize) -> Result<Self, RuleError> {
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            *count += 1;
            let field = format!("{at}.{key}");
            if *count > CONDITIONS_MAX {
                return Err(RuleError::new(at, format!("at most {CONDITIONS_MAX} conditions")));
            }
            if key.is_empty() || key.len() > 200 {
                return Err(RuleError::new(at, "a condition needs a field name of 1 to 200 characters"));
            }
            let entry = match key.as_str() {
                "not" => match value {
                    Value::Object(inner) => Entry::Not(Self::parse_at(inner, &field, count)?),
                    _ => return Err(RuleError::new(field, "\"not\" takes a map of conditions")),
                },
                "if" => match value {
                    Value::String(src) => {
                        Entry::If(Expr::compile(src).map_err(|m| RuleError::new(&field, m))?)
                    }
                    _ => return Err(RuleError::new(field, "\"if\" takes an expression as a string")),
                },
                "ignore_bots" => match value {
                    Value::Bool(true) => Entry::IgnoreBots,
                    Value::Bool(false) => continue,
                    _ => return Err(RuleError::new(field, "\"ignore_bots\" is true or false")),
                },
                _ => {
                    check_value(&field, value, true)?;
                    let subject = match key.as_str() {
                        "labels" => Subject::Labels,
                        "label" => Subject::Label,
                        "body_contains" => Subject::BodyContains,
                        "repository" => Subject::Path(vec!["repo".into()]),
                        path => {
                            if path.split('.').any(str::is_empty) {
                                return Err(RuleError::new(field, format!("{path:?} is not a dotted path")));
                            }
                            Subject::Path(path.split('.').map(str::to_owned).collect())
                        }
                    };
                    Entry::Match { subject, key: key.clone(), want: value.clone() }
                }
            };
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// Whether every entry holds for `ctx` (the payload merged with the
    /// derived variables; see [`crate::context`]).
    pub fn check(&self, ctx: &Value) -> Result<(), Miss> {
        for entry in &self.entries {
            match entry {
                Entry::IgnoreBots => {
                    if ctx.get("is_bot").and_then(Value::as_bool) == Some(true) {
                        return Err(Miss::Unmet("ignore_bots".into()));
                    }
                }
                Entry::Not(inner) => match inner.check(ctx) {
                    Ok(()) => return Err(Miss::Unmet("not".into())),
                    Err(Miss::Unmet(_)) => {}
                    Err(failed) => return Err(failed),
                },
                Entry::If(expr) => match expr.eval(ctx) {
                    Ok(true) => {}
                    Ok(false) => return Err(Miss::Unmet("if".into())),
                    Err(e) => return Err(Miss::Failed(format!("if: {e}"))),
                },
                Entry::Match { subject, key, want } => {
                    let have = lookup(subject, ctx);
                    if !holds(want, have.as_ref(), subject == &Subject::BodyContains) {
                        return Err(Miss::Unmet(key.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_value(field: &str, value: &Value, list_allowed: bool) -> Result<(), RuleError> {
    match value {
        Value::String(s) if s.len() > TEXT_MAX => {
            Err(RuleError::new(field, format!("values are at most {TEXT_MAX} characters")))
        }
        Value::Array(items) if list_allowed => {
            if items.is_empty() {
                return Err(RuleError::new(field, "an empty list can never match"));
            }
            items.iter().try_for_each(|v| check_value(field, v, false))
        }
        Value::Array(_) | Value::Object(_) => {
            Err(RuleError::new(field, "a condition is a value, a glob or a list of values"))
        }
        _ => Ok(()),
    }
}

fn lookup(subject: &Subject, ctx: &Value) -> Option<Value> {
    match subject {
        Subject::Labels => ctx.get("labels").cloned(),
        Subject::Label => ctx.get("label").cloned().or_else(|| ctx.get("labels").cloned()),
        Subject::BodyContains => ctx.get("body").cloned(),
        Subject::Path(path) => {
            let mut at = ctx;
            for part in path {
                at = match at {
                    Value::Object(o) => o.get(part)?,
                    Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            Some(at.clone())
        }
    }
}

/// Whether `want` (a condition value) holds for `have` (the event's value).
fn holds(want: &Value, have: Option<&Value>, contains: bool) -> bool {
    match want {
        Value::Array(any) => any.iter().any(|w| holds(w, have, contains)),
        Value::String(s) if s.starts_with('!') => !holds(&Value::String(s[1..].to_owned()), have, contains),
        _ => match have {
            Some(Value::Array(items)) if !items.is_empty() => {
                items.iter().any(|h| one(want, Some(h), contains))
            }
            other => one(want, other, contains),
        },
    }
}

fn one(want: &Value, have: Option<&Value>, contains: bool) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (want, have) {
        (Value::Null, None | Some(Value::Null)) => true,
        (Value::Null, _) | (_, None | Some(Value::Null)) => false,
        (Value::String(w), Some(h)) => {
            let Some(h) = text(h) else { return false };
            let (w, h) = (w.to_lowercase(), h.to_lowercase());
            if contains {
                h.contains(&w)
            } else if w.contains('*') || w.contains('?') {
                glob(&w, &h)
            } else {
                // `#engineering` and `engineering` name one channel.
                w == h || (w.starts_with('#') && w[1..] == h)
            }
        }
        (Value::Number(w), Some(Value::Number(h))) => w.as_f64() == h.as_f64(),
        (Value::Number(w), Some(Value::String(h))) => h.parse::<f64>().ok() == w.as_f64(),
        (Value::Bool(w), Some(h)) => Some(w.to_string()) == text(h),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(conds: &Value, ctx: &Value) -> Result<(), Miss> {
        Conditions::parse(conds.as_object().unwrap()).unwrap().check(ctx)
    }

    #[test]
    fn seed_forms() {
        let ctx = json!({"labels": ["bug", "p1"], "body": "Hey @agent can you look", "channel": "engineering",
                         "branch": "main", "author": "dependabot[bot]", "is_bot": true,
                         "issue": {"fields": {"priority": {"name": "High"}}}});
        assert!(check(&json!({"labels": ["bug", "enhancement"]}), &ctx).is_ok());
        assert!(check(&json!({"labels": ["enhancement"]}), &ctx).is_err());
        assert!(check(&json!({"label": "urgent"}), &ctx).is_err());
        assert!(check(&json!({"label": "P1"}), &ctx).is_ok());
        assert!(check(&json!({"body_contains": "@agent"}), &ctx).is_ok());
        assert!(check(&json!({"channel": "#engineering"}), &ctx).is_ok());
        assert!(check(&json!({"branch": "ma*"}), &ctx).is_ok());
        assert!(check(&json!({"branch": "release/*"}), &ctx).is_err());
        assert_eq!(check(&json!({"author": "!dependabot*"}), &ctx), Err(Miss::Unmet("author".into())));
        assert!(check(&json!({"ignore_bots": true}), &ctx).is_err());
        assert!(check(&json!({"issue.fields.priority.name": ["High", "Highest"]}), &ctx).is_ok());
        assert!(check(&json!({"not": {"branch": "main"}}), &ctx).is_err());
        assert!(check(&json!({"not": {"branch": "dev"}}), &ctx).is_ok());
        assert!(check(&json!({"missing.path": null}), &ctx).is_ok());
        assert!(check(&json!({"if": "labels | length == 2 and branch == 'main'"}), &ctx).is_ok());
        assert!(check(&json!({"if": "labels | length > 2"}), &ctx).is_err());
    }

    #[test]
    fn bad_conditions_name_their_field() {
        let bad = |c: Value| Conditions::parse(c.as_object().unwrap()).unwrap_err();
        assert_eq!(bad(json!({"labels": []})).field, "conditions.labels");
        assert_eq!(bad(json!({"not": "x"})).field, "conditions.not");
        assert_eq!(bad(json!({"not": {"a": {"b": 1}}})).field, "conditions.not.a");
        assert_eq!(bad(json!({"if": "a ==="})).field, "conditions.if");
        assert_eq!(bad(json!({"ignore_bots": "yes"})).field, "conditions.ignore_bots");
        assert_eq!(bad(json!({"a..b": 1})).field, "conditions.a..b");
    }
}
