//! The dashboard's pages and the changes their forms make. Every change
//! goes through the service layer, as the API's do, on record with the
//! signed-in token as actor and `dashboard` as the way it came.

use std::sync::Arc;

use axum::{
    Extension, Form, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chorus_core::{
    Action, AgentName, ApprovalStatus, DeliveryQuery, Event, EventQuery, HookId, IncomingHook, RunQuery,
    Source,
};
use minijinja::context;

/// Any serializable value, for a template.
pub(super) fn v<T: serde::Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Dashboard, Session, error_page, refused, safe_next};
use crate::{
    error::ApiError,
    service::{
        self, IncomingSpec, RuleSpec,
        hooks::Found,
        views::{AgentView, CommandView, DeliveryView, IncomingView, RunView, WorkflowView},
    },
    state::AppState,
    workflows,
};

const TEMPLATES: [(&str, &str); 13] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("hooks.html", include_str!("templates/hooks.html")),
    ("new_hook.html", include_str!("templates/new_hook.html")),
    ("created.html", include_str!("templates/created.html")),
    ("hook.html", include_str!("templates/hook.html")),
    ("events.html", include_str!("templates/events.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("rotated.html", include_str!("templates/rotated.html")),
    ("subscriptions.html", include_str!("templates/subscriptions.html")),
    ("agents.html", include_str!("templates/agents.html")),
    ("tasks.html", include_str!("templates/tasks.html")),
];

pub(super) fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, text) in TEMPLATES {
        env.add_template(name, text).expect("the dashboard's templates parse");
    }
    env
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(|| async { Redirect::to("/dashboard/hooks") }))
        .route("/dashboard/hooks", get(hooks).post(create_hook))
        .route("/dashboard/hooks/new", get(new_hook))
        .route("/dashboard/hooks/{id}", get(hook))
        .route("/dashboard/hooks/{id}/events", get(events_fragment))
        // Static segments (test, rotate, rules) take precedence over {verb}.
        .route("/dashboard/hooks/{id}/{verb}", post(toggle))
        .route("/dashboard/hooks/{id}/test", post(test))
        .route("/dashboard/hooks/{id}/rules", post(add_rule))
        .route("/dashboard/hooks/{id}/rules/{rule}", post(edit_rule))
        .route("/dashboard/hooks/{id}/rules/{rule}/{verb}", post(move_or_remove_rule))
        .route("/dashboard/hooks/{id}/rotate", post(rotate))
        .route("/dashboard/deliveries/{id}/retry", post(retry))
        .route("/dashboard/agents", get(agents))
        .route("/dashboard/agents/{name}/{verb}", post(agent_enabled))
        .route("/dashboard/tasks", get(tasks))
        .merge(super::outgoing::routes())
        .route("/dashboard/live", get(super::live::stream))
        .route("/dashboard/runs", get(runs))
        .route("/dashboard/workflows/{name}/{verb}", post(workflow_enabled))
        .route("/dashboard/runs/{id}/{verb}", post(decision))
        .route("/dashboard/audit", get(audit))
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", include_str!("assets/style.css")),
        "app.js" => ("text/javascript; charset=utf-8", include_str!("assets/app.js")),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

fn next_or_home(next: Option<&str>) -> String {
    next.filter(|n| safe_next(n)).unwrap_or("/dashboard/hooks").to_owned()
}

pub(super) async fn login_form(
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let expired = q.next.is_some();
    dashboard.render("login.html", context! { next => next_or_home(q.next.as_deref()), expired })
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

pub(super) async fn login(
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = next_or_home(form.next.as_deref());
    let token = form.token.trim();
    match crate::api::access::principal_for(&state, token).await {
        Ok(Some(principal)) => {
            tracing::info!(actor = %principal.actor, "dashboard: signed in");
            let cookie = super::session_cookie(&state, &dashboard, token);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Ok(None) => {
            let page = dashboard.render(
                "login.html",
                context! { next, error => "That token is not valid: it may be mistyped or revoked." },
            );
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: Option<String>,
}

pub(super) async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Response {
    // Signing out changes nothing stored, but a forged one would still be
    // a nuisance: it takes the session's token too.
    if !session.csrf_matches(form.csrf.as_deref()) {
        return refused(StatusCode::FORBIDDEN, "this form is out of date; reload the page and try again");
    }
    ([(header::SET_COOKIE, super::clear_cookie())], Redirect::to("/dashboard/login")).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct HookFilter {
    agent: Option<String>,
    source: Option<String>,
    state: Option<String>,
}

fn source_names() -> Vec<&'static str> {
    Source::ALL.iter().map(|s| s.as_str()).collect()
}

async fn agent_names(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(state.store.agents().await?.into_iter().map(|a| a.name.to_string()).collect())
}

async fn hooks(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Query(filter): Query<HookFilter>,
) -> Response {
    let result: Result<Response, ApiError> = async {
        let agent = match filter.agent.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => Some(a.parse::<AgentName>().map_err(|e| ApiError::invalid("agent", e.to_string()))?),
            None => None,
        };
        let wanted_source = filter.source.as_deref().filter(|s| !s.is_empty());
        let wanted_state = filter.state.as_deref().filter(|s| !s.is_empty());
        let hooks: Vec<IncomingView> = state
            .store
            .hooks(agent.as_ref())
            .await?
            .iter()
            .filter(|h| wanted_source.is_none_or(|s| h.source.as_str() == s))
            .filter(|h| wanted_state.is_none_or(|s| (s == "enabled") == h.enabled))
            .map(|h| IncomingView::of(&state, h))
            .collect();
        Ok(dashboard.render(
            "hooks.html",
            context! {
                frame => v(&session.frame("Hooks")), section => "hooks", hooks => v(&hooks), agents => agent_names(&state).await?,
                sources => source_names(),
                filter => context! { agent => filter.agent, source => filter.source, state => filter.state },
            },
        ))
    }
    .await;
    result.unwrap_or_else(|e| error_page(&e))
}

async fn new_hook(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
) -> Response {
    match agent_names(&state).await {
        Ok(agents) => dashboard.render(
            "new_hook.html",
            context! {
                frame => v(&session.frame("New hook")), section => "hooks", agents, sources => source_names(),
                form => context! { source => "github" },
            },
        ),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize, serde::Serialize)]
pub(super) struct NewHookForm {
    csrf: Option<String>,
    agent: String,
    source: String,
    name: Option<String>,
    webhook_id: Option<String>,
}

async fn create_hook(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Form(form): Form<NewHookForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let mut spec = IncomingSpec::for_agent(&form.agent);
    spec.source = Some(form.source.clone());
    spec.name = form.name.clone().filter(|n| !n.trim().is_empty());
    spec.webhook_id = form.webhook_id.clone().filter(|w| !w.trim().is_empty());
    let acting = session.acting(&state, "webhooks.create", None);
    match service::hooks::create_incoming(&acting, &spec, "dashboard").await {
        Ok(created) => {
            let hook = &created.hook;
            dashboard.render(
                "created.html",
                context! {
                    frame => v(&session.frame("Hook created")), section => "hooks", id => hook.id.to_string(),
                    url => state.hook_url(hook.agent.as_str(), hook.id.as_str()),
                    secret => created.secret.as_ref().map(|s| s.expose().to_owned()),
                    source => hook.source.as_str(),
                    setup => chorus_providers::of(hook.source).setup(),
                },
            )
        }
        Err(e) => {
            let agents = agent_names(&state).await.unwrap_or_default();
            let page = dashboard.render(
                "new_hook.html",
                context! {
                    frame => v(&session.frame("New hook")), section => "hooks", agents, sources => source_names(),
                    form => v(&form), error => context! { field => e.field.clone(), message => e.message.clone() },
                },
            );
            (e.status, page).into_response()
        }
    }
}

pub(super) async fn find_hook(state: &AppState, id: &str) -> Result<IncomingHook, ApiError> {
    match service::hooks::find_any(state, id).await? {
        Found::Incoming(h) => Ok(h),
        Found::Outgoing(_) => Err(ApiError::not_found(format!("{id} is an outgoing subscription"))),
    }
}

#[derive(Deserialize)]
pub(super) struct HookQuery {
    tested: Option<u16>,
}

async fn hook(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Path(id): Path<String>,
    Query(q): Query<HookQuery>,
) -> Response {
    match hook_page(&session, &state, &dashboard, &id, q.tested, None, Value::Null).await {
        Ok(page) => page,
        Err(e) => error_page(&e),
    }
}

/// The hook's page; `error` and `form`: a rule form to show again with
/// what was wrong beside its field.
async fn hook_page(
    session: &Session,
    state: &AppState,
    dashboard: &Dashboard,
    id: &str,
    tested: Option<u16>,
    error: Option<&ApiError>,
    form: Value,
) -> Result<Response, ApiError> {
    let hook = find_hook(state, id).await?;
    let rules: Vec<CommandView> = state.store.rules(&hook.id).await?.iter().map(CommandView::of).collect();
    let has_secret = state.store.hook_with_secrets(&hook.id).await?.is_some_and(|(_, s)| !s.is_empty());
    let events = recent_events(state, &hook.id).await?;
    let deliveries = deliveries_of(state, &hook.id).await?;
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let error = error.map(|e| context! { field => e.field.clone(), message => e.message.clone() });
    Ok(dashboard.render(
        "hook.html",
        context! {
            frame => v(&session.frame(&hook.name)), section => "hooks", hook => v(&IncomingView::of(state, &hook)),
            rules => v(&rules), has_secret, events => v(&events), actions, tested, error, form => v(&form),
            deliveries => v(&deliveries),
        },
    ))
}

/// A hook's latest deliveries, each with its attempts.
pub(super) async fn deliveries_of(state: &AppState, hook: &HookId) -> Result<Vec<DeliveryView>, ApiError> {
    let query =
        DeliveryQuery { hook_id: Some(hook.clone()), event_id: None, status: None, limit: 20, cursor: None };
    let page = state.store.deliveries(query).await?;
    let mut out = Vec::with_capacity(page.items.len());
    for d in &page.items {
        let mut view = DeliveryView::of(d);
        view.attempt_log = Some(state.store.attempts(&d.id).await?);
        out.push(view);
    }
    Ok(out)
}

/// The latest events of a hook, as its page lists them.
pub(super) async fn latest_events(state: &AppState, hook: &HookId) -> Result<Vec<Event>, ApiError> {
    let query = EventQuery {
        hook_id: Some(hook.clone()),
        status: None,
        event_type: None,
        since: None,
        until: None,
        limit: 20,
        cursor: None,
    };
    Ok(state.store.events(query).await?.items)
}

/// The latest events of a hook, each with the message it became and the
/// payload as text.
async fn recent_events(state: &AppState, hook: &HookId) -> Result<Vec<Value>, ApiError> {
    let events = latest_events(state, hook).await?;
    let mut out = Vec::with_capacity(events.len());
    for event in &events {
        out.push(event_view(state, event).await?);
    }
    Ok(out)
}

async fn event_view(state: &AppState, event: &Event) -> Result<Value, ApiError> {
    let deliveries = state
        .store
        .deliveries(DeliveryQuery {
            hook_id: None,
            event_id: Some(event.id.clone()),
            status: None,
            limit: 5,
            cursor: None,
        })
        .await?;
    // The chat message a delivery carries: what the agent's channel shows.
    let message = deliveries.items.iter().find_map(|d| {
        let title = d.payload.get("title")?.as_str()?;
        let description = d.payload.get("description").and_then(Value::as_str).unwrap_or_default();
        Some(serde_json::json!({"title": title, "description": description}))
    });
    let payload = serde_json::from_slice::<Value>(&event.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&event.body).into_owned());
    let mut view = serde_json::to_value(service::views::EventView::of(event)).unwrap_or_default();
    if let Some(map) = view.as_object_mut() {
        map.insert("message".into(), message.unwrap_or(Value::Null));
        map.insert("payload".into(), Value::String(payload));
    }
    Ok(view)
}

async fn events_fragment(
    _session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let events = recent_events(&state, &hook.id).await?;
        Ok::<_, ApiError>(dashboard.render("events.html", context! { events => v(&events) }))
    }
    .await;
    result.unwrap_or_else(|e| error_page(&e))
}

/// An on/off form: refused without this session's CSRF token or from a
/// read-only token; else its path's `enable` or `disable` as on or off.
fn switch(session: &Session, csrf: Option<&str>, verb: &str) -> Result<bool, Box<Response>> {
    session.may_change(csrf).map_err(|refusal| Box::new(refusal.into_response()))?;
    match verb {
        "enable" => Ok(true),
        "disable" => Ok(false),
        _ => Err(Box::new(error_page(&ApiError::not_found(format!("no such change: {verb}"))))),
    }
}

async fn toggle(
    session: Session,
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let on = match switch(&session, form.csrf.as_deref(), &verb) {
        Ok(on) => on,
        Err(refusal) => return *refusal,
    };
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let action = if on { "webhooks.enable" } else { "webhooks.disable" };
        let acting = session.acting(&state, action, Some(hook.id.to_string()));
        service::hooks::set_enabled(&acting, &Found::Incoming(hook), on).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/dashboard/hooks").into_response(),
        Err(e) => error_page(&e),
    }
}

async fn test(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let outcome = service::hooks::test_incoming(&state, &hook.id).await?;
        Ok::<_, ApiError>((hook.id, outcome.status.as_u16()))
    }
    .await;
    match result {
        Ok((id, status)) => Redirect::to(&format!("/dashboard/hooks/{id}?tested={status}")).into_response(),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize, serde::Serialize)]
pub(super) struct RuleForm {
    csrf: Option<String>,
    trigger: String,
    action: String,
    template: Option<String>,
    conditions: Option<String>,
    priority: Option<String>,
}

impl RuleForm {
    /// The rule the form describes, or what is wrong with a field the
    /// service cannot see (conditions not JSON, priority not a number).
    fn spec(&self) -> Result<RuleSpec, ApiError> {
        self.spec_over(None)
    }

    /// The same, keeping what the form does not show (agent, URL, stop,
    /// reply, signature) from `old`.
    fn spec_over(&self, old: Option<&chorus_core::Rule>) -> Result<RuleSpec, ApiError> {
        let conditions = match self.conditions.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(ApiError::invalid(
                        "conditions",
                        "conditions must be a JSON object, like {\"ref\": \"refs/heads/main\"}",
                    ));
                }
            },
        };
        let priority = match self.priority.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => 0,
            Some(p) => {
                p.parse().map_err(|_| ApiError::invalid("priority", "priority must be a whole number"))?
            }
        };
        Ok(RuleSpec {
            trigger: self.trigger.trim().to_owned(),
            action: self.action.clone(),
            agent: old.and_then(|r| r.agent.as_ref()).map(ToString::to_string),
            template: self.template.clone().filter(|t| !t.trim().is_empty()),
            conditions,
            url: old.and_then(|r| r.url.clone()),
            priority,
            stop: old.is_some_and(|r| r.stop),
            reply: old.is_some_and(|r| r.reply),
            signature: old
                .filter(|r| r.action == Action::Forward)
                .and_then(|r| serde_json::to_value(r.signature).ok()?.as_str().map(str::to_owned)),
        })
    }
}

async fn add_rule(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Path(id): Path<String>,
    Form(form): Form<RuleForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let spec = form.spec()?;
        let acting = session.acting(&state, "webhooks.commands.create", Some(hook.id.to_string()));
        service::rules::add(&acting, &hook, &spec).await?;
        Ok::<_, ApiError>(hook.id)
    }
    .await;
    let shown = || serde_json::to_value(&form).unwrap_or_default();
    back_to_hook(&session, &state, &dashboard, &id, result, shown).await
}

/// Where a rule form on a hook's page leads: the page, on success; on the
/// service's refusal, the page again with the error beside the field and
/// what was entered (`shown`) still in the form.
async fn back_to_hook(
    session: &Session,
    state: &AppState,
    dashboard: &Dashboard,
    id: &str,
    result: Result<HookId, ApiError>,
    shown: impl FnOnce() -> Value,
) -> Response {
    match result {
        Ok(id) => Redirect::to(&format!("/dashboard/hooks/{id}")).into_response(),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            match hook_page(session, state, dashboard, id, None, Some(&e), shown()).await {
                Ok(page) => (e.status, page).into_response(),
                Err(e) => error_page(&e),
            }
        }
        Err(e) => error_page(&e),
    }
}

async fn runs(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
) -> Response {
    let Some(sys) = state.workflows.as_ref() else {
        return dashboard.render(
            "runs.html",
            context! { frame => v(&session.frame("Workflows")), section => "runs", enabled => false },
        );
    };
    let query = RunQuery { workflow: None, status: None, limit: 50, cursor: None };
    let listed = match sys.store.workflows().await {
        Ok(list) => list.iter().map(|w| WorkflowView::of(&state, w)).collect::<Vec<_>>(),
        Err(e) => return error_page(&e.into()),
    };
    match sys.store.runs(query).await {
        Ok(page) => {
            let runs: Vec<Value> = page
                .items
                .iter()
                .map(|r| {
                    let pending = r.approvals.iter().any(|a| a.status == ApprovalStatus::Pending);
                    serde_json::json!({"run": RunView::of(r, false), "pending": pending})
                })
                .collect();
            dashboard.render(
                "runs.html",
                context! {
                    frame => v(&session.frame("Workflows")), section => "runs", enabled => true, runs => v(&runs),
                    workflows => v(&listed),
                },
            )
        }
        Err(e) => error_page(&e.into()),
    }
}

async fn decide(
    session: &Session,
    state: &AppState,
    id: &str,
    csrf: Option<&str>,
    approve: bool,
) -> Response {
    if let Err(refusal) = session.may_change(csrf) {
        return refusal.into_response();
    }
    let result = async {
        let run: chorus_core::RunId = id.parse().map_err(|_| ApiError::not_found(format!("no run {id}")))?;
        let gate = workflows::pending_gate(state, &run).await?;
        let action = if approve { "runs.approve" } else { "runs.deny" };
        let acting = session.acting(state, action, Some(run.to_string()));
        let by = format!("{} via dashboard", session.principal.actor);
        workflows::decide(&acting, &gate, approve, &by, true).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/dashboard/runs").into_response(),
        Err(e) => error_page(&e),
    }
}

async fn decision(
    session: Session,
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match verb.as_str() {
        "approve" | "deny" => decide(&session, &state, &id, form.csrf.as_deref(), verb == "approve").await,
        _ => error_page(&ApiError::not_found(format!("no such decision: {verb}"))),
    }
}

async fn audit(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
) -> Response {
    match state.store.audit(100, None).await {
        Ok(page) => {
            let entries = page.items;
            dashboard.render(
                "audit.html",
                context! { frame => v(&session.frame("Audit log")), section => "audit", entries => v(&entries) },
            )
        }
        Err(e) => error_page(&e.into()),
    }
}

async fn edit_rule(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Path((id, rule)): Path<(String, String)>,
    Form(form): Form<RuleForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let old = service::rules::find(&state, &hook, &rule).await?;
        let spec = form.spec_over(Some(&old))?;
        let acting = session.acting(&state, "webhooks.commands.update", Some(hook.id.to_string()));
        service::rules::replace(&acting, &hook, &rule, &spec).await?;
        Ok::<_, ApiError>(hook.id)
    }
    .await;
    // Shown again in the rule's own form, with the error beside its field.
    let shown = || {
        let mut shown = serde_json::to_value(&form).unwrap_or_default();
        shown["editing"] = Value::String(rule.clone());
        shown
    };
    back_to_hook(&session, &state, &dashboard, &id, result, shown).await
}

async fn move_or_remove_rule(
    session: Session,
    State(state): State<AppState>,
    Path((id, rule, verb)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let action = if verb == "remove" { "webhooks.commands.delete" } else { "webhooks.commands.update" };
        let acting = session.acting(&state, action, Some(hook.id.to_string()));
        match verb.as_str() {
            "up" | "down" => service::rules::reorder(&acting, &hook, &rule, verb == "up").await?,
            "remove" => service::rules::remove(&acting, &hook, &rule).await?,
            _ => return Err(ApiError::not_found(format!("no such change: {verb}"))),
        }
        Ok::<_, ApiError>(hook.id)
    }
    .await;
    match result {
        Ok(id) => Redirect::to(&format!("/dashboard/hooks/{id}")).into_response(),
        Err(e) => error_page(&e),
    }
}

async fn rotate(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(&state, &id).await?;
        let acting = session.acting(&state, "webhooks.rotate-secret", Some(hook.id.to_string()));
        // A day's grace, as the API's default: senders switch unhurried.
        let (secret, until) =
            service::hooks::rotate_secret(&acting, &Found::Incoming(hook.clone()), None, 86_400).await?;
        Ok::<_, ApiError>((hook, secret, until))
    }
    .await;
    match result {
        Ok((hook, secret, until)) => dashboard.render(
            "rotated.html",
            context! {
                frame => v(&session.frame("Secret rotated")), section => "hooks", id => hook.id.to_string(),
                secret => secret.expose().to_owned(), until => until.to_string(),
            },
        ),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct BackForm {
    csrf: Option<String>,
    back: Option<String>,
}

async fn retry(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<BackForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let acting = session.acting(&state, "deliveries.retry", Some(id.clone()));
    match service::hooks::retry_delivery(&acting, &id).await {
        Ok(_) => Redirect::to(&next_or_home(form.back.as_deref())).into_response(),
        Err(e) => error_page(&e),
    }
}

async fn agents(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
) -> Response {
    match state.store.agents().await {
        Ok(list) => {
            let agents: Vec<AgentView> = list.iter().map(AgentView::of).collect();
            dashboard.render(
                "agents.html",
                context! { frame => v(&session.frame("Agents")), section => "agents", agents => v(&agents) },
            )
        }
        Err(e) => error_page(&e.into()),
    }
}

async fn agent_enabled(
    session: Session,
    State(state): State<AppState>,
    Path((name, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let on = match switch(&session, form.csrf.as_deref(), &verb) {
        Ok(on) => on,
        Err(refusal) => return *refusal,
    };
    let acting =
        session.acting(&state, if on { "agents.enable" } else { "agents.disable" }, Some(name.clone()));
    match service::agents::set_enabled(&acting, &name, on).await {
        Ok(_) => Redirect::to("/dashboard/agents").into_response(),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct TaskFilter {
    status: Option<String>,
}

async fn tasks(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
    Query(filter): Query<TaskFilter>,
) -> Response {
    let wanted = filter.status.as_deref().filter(|s| !s.is_empty());
    let status = match wanted.map(|s| chorus_core::TaskStatus::parse(s).ok_or(s)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(s)) => return error_page(&ApiError::invalid("status", format!("no task status {s:?}"))),
    };
    let query = chorus_core::TaskQuery { agent: None, status, limit: 100, cursor: None };
    match state.store.tasks(query).await {
        Ok(page) => {
            let statuses: Vec<&str> = chorus_core::TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
            dashboard.render(
                "tasks.html",
                context! {
                    frame => v(&session.frame("Tasks")), section => "tasks", tasks => v(&page.items),
                    statuses, status => wanted,
                },
            )
        }
        Err(e) => error_page(&e.into()),
    }
}

async fn workflow_enabled(
    session: Session,
    State(state): State<AppState>,
    Path((name, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let on = match switch(&session, form.csrf.as_deref(), &verb) {
        Ok(on) => on,
        Err(refusal) => return *refusal,
    };
    let action = if on { "workflows.enable" } else { "workflows.disable" };
    let acting = session.acting(&state, action, Some(name.clone()));
    match workflows::set_enabled(&acting, &name, on).await {
        Ok(_) => Redirect::to("/dashboard/runs").into_response(),
        Err(e) => error_page(&e),
    }
}
