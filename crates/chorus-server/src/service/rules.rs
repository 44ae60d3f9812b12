//! A hook's routing rules as every surface changes them: the API's
//! `/commands`, `!hook … rule`, the slash commands and the dashboard.

use chorus_core::{IncomingHook, Rule, StoreError};

use super::{COMMANDS_MAX, RuleSpec, now, rule, rules};
use crate::{error::ApiError, state::AppState};

/// Whether `comment` rules and `reply` tasks can write back: the hook has
/// reply credentials.
async fn can_reply(state: &AppState, hook: &IncomingHook) -> Result<bool, ApiError> {
    Ok(state.store.reply(&hook.id).await?.is_some())
}

/// The hook's rule `rule_id`.
pub(crate) async fn find(state: &AppState, hook: &IncomingHook, rule_id: &str) -> Result<Rule, ApiError> {
    state
        .store
        .rules(&hook.id)
        .await?
        .into_iter()
        .find(|c| c.id == rule_id)
        .ok_or_else(|| ApiError::not_found(format!("command {rule_id} not found")))
}

/// Add a rule to the hook's set.
pub(crate) async fn add(state: &AppState, hook: &IncomingHook, spec: &RuleSpec) -> Result<Rule, ApiError> {
    if state.store.rules(&hook.id).await?.len() >= COMMANDS_MAX {
        return Err(ApiError::bad_request(format!("at most {COMMANDS_MAX} commands a hook")));
    }
    let made = rule(state, hook, can_reply(state, hook).await?, spec, None, now(state)).await?;
    state.store.put_rule(made.clone()).await?;
    Ok(made)
}

/// Replace rule `rule_id` whole; its id and creation time stay.
pub(crate) async fn replace(
    state: &AppState,
    hook: &IncomingHook,
    rule_id: &str,
    spec: &RuleSpec,
) -> Result<Rule, ApiError> {
    let old = find(state, hook, rule_id).await?;
    let made = rule(state, hook, can_reply(state, hook).await?, spec, Some(old.id), old.created_at).await?;
    state.store.put_rule(made.clone()).await?;
    Ok(made)
}

/// Make `specs` the hook's whole rule set; answers the set in order.
pub(crate) async fn replace_all(
    state: &AppState,
    hook: &IncomingHook,
    specs: &[RuleSpec],
) -> Result<Vec<Rule>, ApiError> {
    let made = rules(state, hook, can_reply(state, hook).await?, specs, now(state)).await?;
    state.store.replace_rules(&hook.id, made).await?;
    Ok(state.store.rules(&hook.id).await?)
}

/// Move rule `rule_id` one place earlier (`up`) or later in the order the
/// rules run, by giving every rule a priority that says the new order; ids
/// and creation times stay.
pub(crate) async fn reorder(
    state: &AppState,
    hook: &IncomingHook,
    rule_id: &str,
    up: bool,
) -> Result<(), ApiError> {
    let mut set = state.store.rules(&hook.id).await?;
    let at = set
        .iter()
        .position(|r| r.id == rule_id)
        .ok_or_else(|| ApiError::not_found(format!("command {rule_id} not found")))?;
    let to = if up { at.checked_sub(1) } else { Some(at + 1).filter(|&t| t < set.len()) };
    let Some(to) = to else { return Ok(()) };
    set.swap(at, to);
    let n = i32::try_from(set.len()).unwrap_or(i32::MAX);
    for (i, rule) in (0..).zip(set.iter_mut()) {
        // Ten apart, highest first: at most 1,000 for the 100 rules a hook may have.
        rule.priority = (n - i) * 10;
    }
    state.store.replace_rules(&hook.id, set).await?;
    Ok(())
}

/// Remove rule `rule_id`.
pub(crate) async fn remove(state: &AppState, hook: &IncomingHook, rule_id: &str) -> Result<(), ApiError> {
    state.store.delete_rule(&hook.id, rule_id).await.map_err(|e| match e {
        StoreError::NotFound { .. } => ApiError::not_found(format!("command {rule_id} not found")),
        other => other.into(),
    })
}
