//! Read-through cache of what ingress looks up on every request: the hook
//! with its opened secrets, and its agent.
//!
//! Every webhook request needs both before it can verify a signature; going
//! to SQLite for them costs two blocking-pool round trips and an AES-GCM open
//! per request, which at load is more than the insert itself. Hooks and
//! agents change rarely and only through this process (the database lock
//! guarantees one process per file), so the store clears the cache on each
//! such change. A generation counter keeps a read that raced with a change
//! from putting the old row back.

use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
};

use chorus_core::{Agent, AgentName, HookId, IncomingHook, Rule, Secret};

/// Entries kept per map; past it the map starts over rather than growing
/// without bound when many distinct hooks are hit.
const CAPACITY: usize = 4096;

/// A hook as stored: the grace-period secret is filtered by time at lookup,
/// so a cached entry never outlives the previous secret's expiry.
#[derive(Clone)]
pub(crate) struct CachedHook {
    pub(crate) hook: IncomingHook,
    pub(crate) secret: Option<Secret>,
    /// The rotated-out secret and when (ms since epoch) it stops verifying.
    pub(crate) previous: Option<(Secret, i64)>,
}

impl CachedHook {
    /// The secrets that verify at `now_ms`: current first.
    pub(crate) fn secrets(&self, now_ms: i64) -> Vec<Secret> {
        let mut out = Vec::with_capacity(2);
        out.extend(self.secret.clone());
        if let Some((s, expires)) = &self.previous
            && *expires > now_ms
        {
            out.push(s.clone());
        }
        out
    }
}

#[derive(Default)]
struct State {
    generation: u64,
    hooks: HashMap<HookId, CachedHook>,
    agents: HashMap<AgentName, Agent>,
    rules: HashMap<HookId, Vec<Rule>>,
}

#[derive(Default)]
pub(crate) struct LookupCache {
    state: RwLock<State>,
}

impl LookupCache {
    /// Taken before reading the database; passed back to `put_*`.
    pub(crate) fn generation(&self) -> u64 {
        self.state.read().unwrap_or_else(PoisonError::into_inner).generation
    }

    pub(crate) fn hook(&self, id: &HookId) -> Option<CachedHook> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).hooks.get(id).cloned()
    }

    pub(crate) fn agent(&self, name: &AgentName) -> Option<Agent> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).agents.get(name).cloned()
    }

    pub(crate) fn put_hook(&self, generation: u64, entry: CachedHook) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != generation {
            return;
        }
        if state.hooks.len() >= CAPACITY {
            state.hooks.clear();
        }
        state.hooks.insert(entry.hook.id.clone(), entry);
    }

    pub(crate) fn rules(&self, id: &HookId) -> Option<Vec<Rule>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).rules.get(id).cloned()
    }

    pub(crate) fn put_rules(&self, generation: u64, id: HookId, rules: Vec<Rule>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != generation {
            return;
        }
        if state.rules.len() >= CAPACITY {
            state.rules.clear();
        }
        state.rules.insert(id, rules);
    }

    pub(crate) fn put_agent(&self, generation: u64, agent: Agent) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != generation {
            return;
        }
        if state.agents.len() >= CAPACITY {
            state.agents.clear();
        }
        state.agents.insert(agent.name.clone(), agent);
    }

    /// After any committed change to agents or hooks.
    pub(crate) fn invalidate(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.hooks.clear();
        state.agents.clear();
        state.rules.clear();
    }
}

#[cfg(test)]
mod tests {
    use chorus_core::{AgentName, HookId, IncomingHook, Source};

    use super::*;

    fn hook(id: &HookId) -> CachedHook {
        let hook = IncomingHook {
            id: id.clone(),
            slug: None,
            agent: "a".parse::<AgentName>().unwrap(),
            name: String::new(),
            source: Source::Github,
            generic: None,
            enabled: true,
            rate_limit_per_minute: 60,
            ip_allowlist: Vec::new(),
            template: None,
            events: Vec::new(),
            aggregate_secs: None,
            notify_changes: false,
            threads: false,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            created_by: "test".into(),
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        };
        CachedHook { hook, secret: Some(Secret::new("now")), previous: Some((Secret::new("old"), 1_000)) }
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_cached() {
        let cache = LookupCache::default();
        let id = HookId::generate();
        let before = cache.generation();
        cache.invalidate();
        cache.put_hook(before, hook(&id));
        assert!(cache.hook(&id).is_none());
        cache.put_hook(cache.generation(), hook(&id));
        assert!(cache.hook(&id).is_some());
        cache.invalidate();
        assert!(cache.hook(&id).is_none());
    }

    #[test]
    fn previous_secret_stops_verifying_at_its_expiry() {
        let entry = hook(&HookId::generate());
        let names = |now| entry.secrets(now).iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(999), ["now", "old"]);
        assert_eq!(names(1_000), ["now"]);
    }
}
