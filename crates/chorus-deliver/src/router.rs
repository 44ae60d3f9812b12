use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::Engine as _;
use chorus_core::{
    Action, AgentName, Clock, DeliveryId, Event, EventStatus, Field, HookId, IncomingHook, Message,
    NewDelivery, Question, QuestionStatus, RoutedEvent, Rule, RuleOutcome, RuleResult, Store, StoreError,
    SubjectUpdate, Target, Task, TaskStatus, random_token,
};
use chorus_rules::{Miss, SubjectState, Verdict};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a claimed event is reserved for the router that claimed it.
const LEASE: Duration = Duration::from_secs(60);
const BATCH: usize = 64;
/// Upper bound of any idle wait, so leases of crashed routers are noticed.
const IDLE: Duration = Duration::from_secs(5);

/// Turns stored incoming events into deliveries.
pub struct EventRouter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    delivered: Arc<Notify>,
    stats: Arc<RouterStats>,
}

/// What the router has decided since the process started, for metrics:
/// events by the status routing gave them, rules by action and result.
#[derive(Debug, Default)]
pub struct RouterStats {
    counts: std::sync::Mutex<RouterCounts>,
}

/// A copy of [`RouterStats`]' counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterCounts {
    /// Events routed, by the status they were given (`routed`, `filtered`, …).
    pub events: std::collections::BTreeMap<String, u64>,
    /// Rules evaluated, by action and result (`fired`, `skipped`, `failed`).
    pub rules: std::collections::BTreeMap<(String, String), u64>,
}

impl RouterStats {
    /// The counts now.
    pub fn snapshot(&self) -> RouterCounts {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Add what a committed batch decided.
    fn add(&self, tally: RouterCounts) {
        let mut c = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, n) in tally.events {
            *c.events.entry(k).or_default() += n;
        }
        for (k, n) in tally.rules {
            *c.rules.entry(k).or_default() += n;
        }
    }
}

impl RouterCounts {
    /// What `routed` decides, counted.
    fn of(routed: &[RoutedEvent]) -> Self {
        let mut c = Self::default();
        for r in routed {
            *c.events.entry(r.status.as_str().to_owned()).or_default() += 1;
            for o in &r.outcomes {
                *c.rules.entry((o.action.as_str().to_owned(), o.result.as_str().to_owned())).or_default() +=
                    1;
            }
        }
        c
    }
}

impl EventRouter {
    /// `wake` is notified by ingress after each commit; `delivered` is
    /// notified here after deliveries are committed (the engine waits on it).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        delivered: Arc<Notify>,
    ) -> Self {
        Self { store, clock, wake, delivered, stats: Arc::default() }
    }

    /// Count decisions into `stats` (shared with whoever reports them).
    #[must_use]
    pub fn with_stats(mut self, stats: Arc<RouterStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Route until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // Registered before the claim so a commit between the claim and
            // the wait is not missed.
            let notified = self.wake.notified();
            let routed = match self.route_batch().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "routing failed; will retry");
                    0
                }
            };
            if routed == BATCH {
                continue;
            }
            if let Err(e) = self.close_windows().await {
                tracing::warn!(error = %e, "closing aggregation windows failed; will retry");
            }
            let sleep = match self.store.next_window().await {
                Ok(Some(at)) => {
                    let wait = at.duration_since(self.clock.now());
                    Duration::try_from(wait).unwrap_or(Duration::ZERO).min(IDLE)
                }
                _ => IDLE,
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = notified => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Post the summaries of the aggregation windows that have ended; each
    /// summary commits with its window's closing, so a restart neither
    /// loses nor repeats one. Returns how many were closed.
    pub async fn close_windows(&self) -> Result<usize, StoreError> {
        let mut closed = 0;
        for (hook_id, ends_at) in self.store.due_windows(self.clock.now()).await? {
            let events = self.store.window_events(&hook_id, ends_at).await?;
            let mut deliveries = Vec::new();
            if let (Some(hook), Some(first)) = (self.store.hook(&hook_id).await?, events.first())
                && let Some(target) = target_for(self.store.as_ref(), &hook.agent).await?
            {
                let messages: Vec<Message> = events
                    .iter()
                    .map(|e| render(Some(&hook), e, serde_json::from_slice::<Value>(&e.body).ok().as_ref()))
                    .collect();
                let mut message = crate::window::summary(&hook, &events, &messages);
                message.timestamp = Some(ends_at.to_string());
                deliveries.push(delivery(first, target, &message, &self.clock));
            }
            if self.store.close_window(&hook_id, ends_at, deliveries).await? {
                closed += 1;
            }
        }
        if closed > 0 {
            self.delivered.notify_one();
        }
        Ok(closed)
    }

    /// Route one batch; returns how many events were claimed.
    pub async fn route_batch(&self) -> Result<usize, StoreError> {
        let events = self.store.claim_events(self.clock.now(), LEASE, BATCH).await?;
        let n = events.len();
        let mut batch = Vec::with_capacity(n);
        let mut seen = BatchState::default();
        for event in &events {
            batch.push(route_with(self.store.as_ref(), &self.clock, event, &mut seen).await?);
        }
        let produced = batch.iter().any(|r| !r.deliveries.is_empty());
        // One transaction for the whole batch: routing keeps up with ingress
        // instead of paying an fsync per event.
        let tally = RouterCounts::of(&batch);
        self.store.route_events(batch).await?;
        self.stats.add(tally);
        if produced {
            self.delivered.notify_one();
        }
        Ok(n)
    }
}

/// What routing one batch has read or changed so far.
#[derive(Default)]
struct BatchState {
    /// Subject states as this batch leaves them: two reviews of one pull
    /// request in one batch must see each other.
    subjects: HashMap<(HookId, String), SubjectState>,
    /// Each hook and its rules, read once a batch (a burst is mostly one hook).
    hooks: HashMap<HookId, (Option<IncomingHook>, Vec<Rule>)>,
}

/// Decide what one event becomes: filtered, unmatched, or the jobs of the
/// rules that fire (one notification to the hook's agent when the hook has
/// no rules). Nothing is written; the caller commits the result.
pub async fn route_event(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
) -> Result<RoutedEvent, StoreError> {
    route_with(store, clock, event, &mut BatchState::default()).await
}

async fn route_with(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
    seen: &mut BatchState,
) -> Result<RoutedEvent, StoreError> {
    if !seen.hooks.contains_key(&event.hook_id) {
        let hook = store.hook(&event.hook_id).await?;
        let rules = match &hook {
            Some(h) => store.rules(&h.id).await?,
            None => Vec::new(),
        };
        seen.hooks.insert(event.hook_id.clone(), (hook, rules));
    }
    let (hook, rules) = &seen.hooks[&event.hook_id];
    if let Some(h) = &hook
        && !h.routes(&event.event_type)
    {
        return Ok(RoutedEvent::bare(event.id.clone(), EventStatus::Filtered));
    }
    let payload: Option<Value> = serde_json::from_slice(&event.body).ok();
    let mut routed = RoutedEvent::bare(event.id.clone(), EventStatus::Routed);

    let (state, change) =
        track_subject(store, event, payload.as_ref(), &mut seen.subjects, &mut routed).await?;
    let changes_only = hook.as_ref().is_some_and(|h| h.notify_changes);
    if rules.is_empty() && changes_only && change.is_some_and(|c| !c.is_news()) {
        // Failing again, or passing again: kept in the log, not posted.
        return Ok(routed);
    }

    if rules.is_empty()
        && let Some(h) = hook
        && let (Some(ends_at), Some(if_closed)) = (h.window_end(event.received_at), h.window_end(clock.now()))
    {
        // Held for the window in which it was received, as its sender saw
        // it; routed after that window's summary went out (late, after a
        // crash), for the current one.
        routed.window = Some(chorus_core::WindowSlot { hook: h.id.clone(), ends_at, if_closed });
        return Ok(routed);
    }
    if rules.is_empty() {
        let mut message = threaded(render(hook.as_ref(), event, payload.as_ref()), hook.as_ref());
        if changes_only && change == Some(chorus_rules::Change::Fixed) {
            message.title = format!("✅ Fixed: {}", message.title);
        }
        match target_for(store, &event.agent).await? {
            Some(target) => routed.deliveries.push(delivery(event, target, &message, clock)),
            None => {
                tracing::warn!(event = %event.id, agent = %event.agent, "agent has no channel or Discord webhook; nothing to deliver");
            }
        }
        return Ok(routed);
    }

    let mut ctx = chorus_rules::context(
        event.source,
        &event.event_type,
        payload.as_ref().unwrap_or(&Value::Null),
        &state,
    );
    // A rule's "notify on changes": false only for a finished run or alert
    // that repeats its subject's last result.
    if let Some(vars) = ctx.as_object_mut() {
        vars.insert("changed".into(), Value::Bool(change.is_none_or(chorus_rules::Change::is_news)));
    }
    let verdicts = chorus_rules::evaluate(rules, &event.event_type, &ctx);
    let mut fired = 0;
    for verdict in verdicts {
        let outcome = match verdict {
            Verdict::Skipped(rule, miss) => {
                let (result, note) = match miss {
                    Miss::Unmet(key) => (RuleResult::Skipped, format!("condition {key:?} did not hold")),
                    Miss::Failed(why) => (RuleResult::Failed, why),
                };
                RuleOutcome {
                    rule_id: rule.id.clone(),
                    action: rule.action,
                    result,
                    delivery_id: None,
                    task_id: None,
                    question_id: None,
                    note: Some(note),
                }
            }
            Verdict::Fired(rule) => {
                fired += 1;
                act(store, clock, event, hook.as_ref(), payload.as_ref(), rule, &ctx, &mut routed).await?
            }
        };
        routed.outcomes.push(outcome);
    }
    if fired == 0 {
        routed.status = EventStatus::Unmatched;
    }
    Ok(routed)
}

/// Turn one fired rule into its jobs (added to `routed`); the outcome says
/// what was made.
#[allow(clippy::too_many_arguments)]
async fn act(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
    hook: Option<&IncomingHook>,
    payload: Option<&Value>,
    rule: &Rule,
    ctx: &Value,
    routed: &mut RoutedEvent,
) -> Result<RuleOutcome, StoreError> {
    let mut outcome = RuleOutcome {
        rule_id: rule.id.clone(),
        action: rule.action,
        result: RuleResult::Fired,
        delivery_id: None,
        task_id: None,
        question_id: None,
        note: None,
    };
    let rendered = match rule.template.as_deref().map(|t| chorus_rules::render(t, ctx)) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(e)) => {
            // A template that fails at run time must not lose the event:
            // the formatter's text stands in, and the log says why.
            outcome.note = Some(format!("template failed, formatter used instead: {}", e.message));
            None
        }
    };
    let agent = rule.agent.clone().unwrap_or_else(|| event.agent.clone());
    match rule.action {
        Action::Notify => {
            let mut message = match &rendered {
                Some(text) => Message {
                    description: text.clone(),
                    footer: Some(event.event_type.clone()),
                    ..Message::default()
                },
                None => threaded(render(None, event, payload), hook),
            };
            if rendered.is_some() {
                stamp(&mut message, event);
            }
            push_to_agent(store, clock, event, &agent, message, routed, &mut outcome).await?;
        }
        Action::CreateTask => {
            let task = task_for(clock, event, payload, rule, ctx, rendered, &agent);
            let message = task_message(&task, event);
            outcome.task_id = Some(task.id.clone());
            routed.tasks.push(task);
            push_to_agent(store, clock, event, &agent, message, routed, &mut outcome).await?;
        }
        Action::Forward => match &rule.url {
            Some(url) => {
                let body = rendered.map(|t| (t.into_bytes(), "text/plain; charset=utf-8".to_owned()));
                let mut d = forward(clock, event, hook, url, body);
                if rule.signature == chorus_core::SignatureScheme::Standard {
                    d.payload["signature"] = json!("standard");
                }
                outcome.delivery_id = Some(d.id.to_string());
                routed.deliveries.push(d);
            }
            None => {
                outcome.result = RuleResult::Failed;
                outcome.note = Some("forward rule without a url".into());
            }
        },
        Action::Comment => {
            let text = rendered.unwrap_or_else(|| plain_text(event, payload));
            let comment = payload
                .ok_or_else(|| "the body is not JSON".to_owned())
                .and_then(|p| crate::reply::comment(event.source, p, &text));
            match comment {
                Ok(c) => {
                    let d = reply_delivery(clock, event, &c);
                    outcome.delivery_id = Some(d.id.to_string());
                    routed.deliveries.push(d);
                    tell_agent(store, clock, event, rule, "💬 Commented on the source", &text, routed)
                        .await?;
                }
                Err(why) => {
                    outcome.result = RuleResult::Failed;
                    outcome.note = Some(why);
                }
            }
        }
        Action::Respond => {
            if let Some(text) = &rendered {
                tell_agent(store, clock, event, rule, "↩️ Answered the sender", text, routed).await?;
            }
            note_answer(rendered, &mut outcome);
        }
        Action::Ask => {
            let q = question_for(clock, event, payload, &agent, rendered);
            let message = question_message(&q, event);
            outcome.question_id = Some(q.id.clone());
            routed.questions.push(q);
            push_to_agent(store, clock, event, &agent, message, routed, &mut outcome).await?;
        }
    }
    Ok(outcome)
}

/// A `comment` or `respond` rule that names an agent tells that agent's
/// channel what was said on its behalf; without one, the source alone hears
/// it.
async fn tell_agent(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
    rule: &Rule,
    title: &str,
    text: &str,
    routed: &mut RoutedEvent,
) -> Result<(), StoreError> {
    let Some(agent) = &rule.agent else { return Ok(()) };
    if let Some(target) = target_for(store, agent).await? {
        let mut message = Message::titled(title);
        message.description = text.to_owned();
        message.footer = Some(event.event_type.clone());
        stamp(&mut message, event);
        routed.deliveries.push(delivery(event, target, &message, clock));
    }
    Ok(())
}

/// `respond` is answered by ingress in its response, after the commit; the
/// router only records what was said.
fn note_answer(rendered: Option<String>, outcome: &mut RuleOutcome) {
    match rendered {
        Some(text) => {
            outcome.note =
                Some(format!("answered the sender: {}", text.chars().take(200).collect::<String>()));
        }
        None => {
            outcome.result = RuleResult::Failed;
            let why = outcome.note.take().unwrap_or_else(|| "no template".into());
            outcome.note = Some(format!("{why}; no answer was sent"));
        }
    }
}

/// The formatted message as plain text: what a rule without a template says.
fn plain_text(event: &Event, payload: Option<&Value>) -> String {
    let m = render(None, event, payload);
    format!("{}\n\n{}", m.title, m.description).trim().to_owned()
}

/// The task a `create_task` rule makes of an event: the rendered template
/// (else the formatted message) as its body, its first line as its title.
fn task_for(
    clock: &Arc<dyn Clock>,
    event: &Event,
    payload: Option<&Value>,
    rule: &Rule,
    ctx: &Value,
    rendered: Option<String>,
    agent: &AgentName,
) -> Task {
    let body = rendered.unwrap_or_else(|| plain_text(event, payload));
    let now = clock.now();
    Task {
        id: random_token("task_", 12),
        agent: agent.clone(),
        title: task_title(&body, ctx, &event.event_type),
        url: ctx.get("url").and_then(Value::as_str).map(str::to_owned),
        body,
        hook_id: Some(event.hook_id.clone()),
        event_id: Some(event.id.clone()),
        rule_id: Some(rule.id.clone()),
        status: TaskStatus::Open,
        result: None,
        reply: rule.reply,
        created_at: now,
        updated_at: now,
    }
}

/// What the agent's channel shows of a new task.
fn task_message(task: &Task, event: &Event) -> Message {
    let mut message = Message::titled(format!("📋 New task for {}: {}", task.agent, task.title));
    message.description = task.body.clone();
    message.url = task.url.clone();
    message.fields.push(Field { name: "Task".into(), value: task.id.clone(), inline: true });
    message.footer = Some(event.event_type.clone());
    stamp(&mut message, event);
    message
}

/// A `forward` job: `body` with its content type (the original body and
/// content type when `None`) for `url`; the sink signs it with the hook's
/// secret when it sends.
pub fn forward(
    clock: &Arc<dyn Clock>,
    event: &Event,
    hook: Option<&IncomingHook>,
    url: &str,
    body: Option<(Vec<u8>, String)>,
) -> NewDelivery {
    let (body, content_type) = body.unwrap_or_else(|| {
        let original = event
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map_or_else(|| "application/json".to_owned(), |(_, v)| v.clone());
        (event.body.clone(), original)
    });
    NewDelivery {
        id: DeliveryId::generate(),
        event_id: Some(event.id.clone()),
        hook_id: event.hook_id.clone(),
        target: Target::Forward { hook_id: event.hook_id.clone() },
        payload: json!({
            "url": url,
            "content_type": content_type,
            "event_type": event.event_type,
            "event_id": event.id,
            "body_b64": base64::engine::general_purpose::STANDARD.encode(body),
            "signed": hook.is_some_and(|h| h.source.has_secret()),
        }),
        due_at: clock.now(),
    }
}

/// A comment back on the event's thread, sent with the hook's reply
/// credentials (resolved when the delivery is claimed).
pub fn reply_delivery(clock: &Arc<dyn Clock>, event: &Event, comment: &crate::reply::Comment) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::generate(),
        event_id: Some(event.id.clone()),
        hook_id: event.hook_id.clone(),
        target: Target::Reply { hook_id: event.hook_id.clone() },
        payload: json!({"method": "POST", "path": comment.path, "body": comment.body, "event_type": event.event_type}),
        due_at: clock.now(),
    }
}

/// The question an `ask` rule puts to `agent`: the rendered template, else
/// the formatted message.
fn question_for(
    clock: &Arc<dyn Clock>,
    event: &Event,
    payload: Option<&Value>,
    agent: &AgentName,
    rendered: Option<String>,
) -> Question {
    Question {
        id: random_token("q_", 12),
        hook_id: event.hook_id.clone(),
        event_id: event.id.clone(),
        agent: agent.clone(),
        question: rendered.unwrap_or_else(|| plain_text(event, payload)),
        status: QuestionStatus::Pending,
        answer: None,
        created_at: clock.now(),
        answered_at: None,
    }
}

/// What the agent's channel shows of a question, with how to answer it.
fn question_message(q: &Question, event: &Event) -> Message {
    let mut message = Message::titled(format!("❓ Question for {}", q.agent));
    message.description = format!(
        "{}\n\nAnswer with `chorus-hookd webhooks respond {} --event {} --message \"…\"` \
         (or POST /api/webhooks/{}/respond); the answer goes back to the source.",
        q.question, q.hook_id, q.event_id, q.hook_id
    );
    message.fields.push(Field { name: "Question".into(), value: q.id.clone(), inline: true });
    message.footer = Some(event.event_type.clone());
    stamp(&mut message, event);
    message
}

/// One line for a task: the template's first line, else the event's title,
/// at most 200 characters.
fn task_title(body: &str, ctx: &Value, event_type: &str) -> String {
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .or_else(|| ctx.get("title").and_then(Value::as_str))
        .unwrap_or(event_type);
    if line.chars().count() <= 200 {
        return line.to_owned();
    }
    let mut title: String = line.chars().take(199).collect();
    title.push('…');
    title
}

async fn push_to_agent(
    store: &dyn Store,
    clock: &Arc<dyn Clock>,
    event: &Event,
    agent: &AgentName,
    message: Message,
    routed: &mut RoutedEvent,
    outcome: &mut RuleOutcome,
) -> Result<(), StoreError> {
    match target_for(store, agent).await? {
        Some(target) => {
            let d = delivery(event, target, &message, clock);
            outcome.delivery_id = Some(d.id.to_string());
            routed.deliveries.push(d);
        }
        None => {
            let note = format!("agent {agent} has no channel or Discord webhook; nothing was posted");
            outcome.note = Some(match outcome.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
    }
    Ok(())
}

/// Fold `event` into the state kept for its subject (a pull request's
/// reviews; a pipeline's or alert group's last result and failure
/// streak), noting the new state in `routed`. Returns the state as it now
/// stands and, for a result, what it changed.
async fn track_subject(
    store: &dyn Store,
    event: &Event,
    payload: Option<&Value>,
    subjects: &mut HashMap<(HookId, String), SubjectState>,
    routed: &mut RoutedEvent,
) -> Result<(SubjectState, Option<chorus_rules::Change>), StoreError> {
    let mut state = SubjectState::default();
    // A finished CI run or an alert: its subject's result, for notifying
    // on changes and for failure streaks.
    let outcome = payload.and_then(|p| {
        let service = chorus_format::Service::of(event.source).or_else(|| {
            chorus_providers::detects(event.source)
                .then(|| chorus_providers::detect(&chorus_providers::header_map(&event.headers), p))
                .flatten()
                .map(|d| d.service)
        })?;
        chorus_rules::outcome_of(service, &event.event_type, p)
    });
    let mut change = None;
    if let Some(p) = payload
        && let Some(subject) = chorus_rules::subject(event.source, &event.event_type, p)
            .or_else(|| outcome.as_ref().map(|(s, _)| s.clone()))
    {
        let key = (event.hook_id.clone(), subject.clone());
        if let Some(known) = subjects.get(&key) {
            state = known.clone();
        } else if let Some(stored) = store.subject_state(&event.hook_id, &subject).await? {
            state = SubjectState::from_value(&stored);
        }
        let before = state.clone();
        chorus_rules::advance(&mut state, &event.event_type, p);
        if let Some((_, result)) = outcome {
            change = Some(state.record(result));
        }
        if state != before {
            routed.subjects.push(SubjectUpdate {
                hook_id: event.hook_id.clone(),
                subject,
                state: state.to_value(),
            });
            subjects.insert(key, state.clone());
        }
    }
    Ok((state, change))
}

/// A message about `event` for a chat target.
pub fn delivery(event: &Event, target: Target, message: &Message, clock: &Arc<dyn Clock>) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::generate(),
        event_id: Some(event.id.clone()),
        hook_id: event.hook_id.clone(),
        target,
        payload: serde_json::to_value(message).expect("a message serializes"),
        due_at: clock.now(),
    }
}

/// Where an agent's messages go: its channel, else its Discord webhook URL.
pub async fn target_for(store: &dyn Store, agent: &AgentName) -> Result<Option<Target>, StoreError> {
    let Some(agent) = store.agent(agent).await? else { return Ok(None) };
    Ok(if let Some(channel_id) = agent.channel_id {
        Some(Target::DiscordChannel { channel_id })
    } else if agent.discord_webhook_url.is_some() {
        Some(Target::DiscordWebhook { agent: agent.name })
    } else {
        None
    })
}

/// The event's id in the footer and its arrival as the timestamp, so a
/// message can be traced back to the event log.
pub fn stamp(message: &mut Message, event: &Event) {
    let footer = message.footer.take().unwrap_or_default();
    message.footer =
        Some(if footer.is_empty() { event.id.to_string() } else { format!("{footer} · {}", event.id) });
    message.timestamp = Some(event.received_at.to_string());
}

/// `event`'s payload by its source's formatter, or by the formatter of the
/// sender it is recognised as when its hook does not say who sends.
fn format_event(event: &Event, payload: &Value) -> Message {
    let headers = chorus_providers::header_map(&event.headers);
    chorus_providers::format_payload(event.source, &headers, &event.event_type, payload)
}

/// `message` with its thread only where the hook asked for threads.
fn threaded(mut message: Message, hook: Option<&IncomingHook>) -> Message {
    if !hook.is_some_and(|h| h.threads) {
        message.thread = None;
    }
    message
}

fn render(hook: Option<&IncomingHook>, event: &Event, parsed: Option<&Value>) -> Message {
    let mut message = match (parsed, hook.and_then(|h| h.template.as_deref())) {
        (Some(payload), Some(template)) => {
            chorus_format::render_template(template, &event.event_type, payload).unwrap_or_else(|e| {
                // A template that fails at delivery time must not lose the
                // event: fall back to the formatter and say why.
                let mut m = format_event(event, payload);
                m.description = format!("{}\n\n⚠️ template error: {e}", m.description).trim().to_owned();
                m
            })
        }
        (Some(payload), None) => format_event(event, payload),
        (None, _) => chorus_format::format_text(event.source, &event.event_type, &event.body),
    };
    stamp(&mut message, event);
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::task_title;

    #[test]
    fn task_titles_are_one_bounded_line() {
        assert_eq!(task_title("\n  Analyze: bug \nbody", &json!({}), "issues.opened"), "Analyze: bug");
        assert_eq!(task_title("", &json!({"title": "From ctx"}), "issues.opened"), "From ctx");
        assert_eq!(task_title("", &json!({}), "issues.opened"), "issues.opened");
        let long = task_title(&"é".repeat(300), &json!({}), "e");
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
    }
}
