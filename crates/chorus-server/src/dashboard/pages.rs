//! The dashboard's pages and the changes their forms make. Every change
//! goes through the service layer, as the API's do, on record with the
//! signed-in token as actor and `dashboard` as the way it came.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Extension, Form, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{get, post},
};
use chorus_core::{
    Action, AgentName, ApprovalStatus, DeliveryQuery, Event, EventQuery, HookId, IncomingHook, RunQuery,
    Source,
};
use minijinja::context;

/// Any serializable value, for a template.
fn v<T: serde::Serialize>(value: &T) -> minijinja::Value {
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
        views::{CommandView, IncomingView, RunView},
    },
    state::AppState,
    workflows,
};

const TEMPLATES: [(&str, &str); 9] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("hooks.html", include_str!("templates/hooks.html")),
    ("new_hook.html", include_str!("templates/new_hook.html")),
    ("created.html", include_str!("templates/created.html")),
    ("hook.html", include_str!("templates/hook.html")),
    ("events.html", include_str!("templates/events.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("audit.html", include_str!("templates/audit.html")),
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
        .route("/dashboard/hooks/{id}/enable", post(enable))
        .route("/dashboard/hooks/{id}/disable", post(disable))
        .route("/dashboard/hooks/{id}/test", post(test))
        .route("/dashboard/hooks/{id}/rules", post(add_rule))
        .route("/dashboard/live", get(live))
        .route("/dashboard/runs", get(runs))
        .route("/dashboard/runs/{id}/approve", post(approve))
        .route("/dashboard/runs/{id}/deny", post(deny))
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
    csrf: Option<String>,
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

async fn find_hook(state: &AppState, id: &str) -> Result<IncomingHook, ApiError> {
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
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let error = error.map(|e| context! { field => e.field.clone(), message => e.message.clone() });
    Ok(dashboard.render(
        "hook.html",
        context! {
            frame => v(&session.frame(&hook.name)), section => "hooks", hook => v(&IncomingView::of(state, &hook)),
            rules => v(&rules), has_secret, events => v(&events), actions, tested, error, form => v(&form),
        },
    ))
}

/// The latest events of a hook, each with the message it became and the
/// payload as text.
async fn recent_events(state: &AppState, hook: &HookId) -> Result<Vec<Value>, ApiError> {
    let page = state
        .store
        .events(EventQuery {
            hook_id: Some(hook.clone()),
            status: None,
            event_type: None,
            since: None,
            until: None,
            limit: 20,
            cursor: None,
        })
        .await?;
    let mut out = Vec::with_capacity(page.items.len());
    for event in &page.items {
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

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    hook: String,
}

/// What a hook's event list shows, in brief: it changes when an event
/// arrives or moves on.
async fn fingerprint(state: &AppState, hook: &HookId) -> Option<String> {
    let page = state
        .store
        .events(EventQuery {
            hook_id: Some(hook.clone()),
            status: None,
            event_type: None,
            since: None,
            until: None,
            limit: 20,
            cursor: None,
        })
        .await
        .ok()?;
    Some(page.items.iter().map(|e| format!("{}:{}", e.id, e.status.as_str())).collect::<Vec<_>>().join(","))
}

/// Server-sent events: `refresh` whenever the hook's events change. The
/// store is looked at once a second, so every replica's events show.
async fn live(
    _session: Session,
    State(state): State<AppState>,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, Response> {
    let hook = find_hook(&state, &q.hook).await.map_err(|e| error_page(&e))?.id;
    let first = fingerprint(&state, &hook).await;
    let stream = futures_util::stream::unfold((state, hook, first), |(state, hook, last)| async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = fingerprint(&state, &hook).await;
            if now != last {
                let event = SseEvent::default().event("refresh").data("events");
                return Some((Ok(event), (state, hook, now)));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn set_enabled(
    session: &Session,
    state: &AppState,
    id: &str,
    csrf: Option<&str>,
    on: bool,
) -> Response {
    if let Err(refusal) = session.may_change(csrf) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find_hook(state, id).await?;
        let action = if on { "webhooks.enable" } else { "webhooks.disable" };
        let acting = session.acting(state, action, Some(hook.id.to_string()));
        service::hooks::set_enabled(&acting, &Found::Incoming(hook), on).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/dashboard/hooks").into_response(),
        Err(e) => error_page(&e),
    }
}

async fn enable(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_enabled(&session, &state, &id, form.csrf.as_deref(), true).await
}

async fn disable(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_enabled(&session, &state, &id, form.csrf.as_deref(), false).await
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
            agent: None,
            template: self.template.clone().filter(|t| !t.trim().is_empty()),
            conditions,
            url: None,
            priority,
            stop: false,
            reply: false,
            signature: None,
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
    match result {
        Ok(id) => Redirect::to(&format!("/dashboard/hooks/{id}")).into_response(),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let shown = serde_json::to_value(&form).unwrap_or_default();
            match hook_page(&session, &state, &dashboard, &id, None, Some(&e), shown).await {
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
            context! { frame => v(&session.frame("Workflow runs")), section => "runs", enabled => false },
        );
    };
    let query = RunQuery { workflow: None, status: None, limit: 50, cursor: None };
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
                context! { frame => v(&session.frame("Workflow runs")), section => "runs", enabled => true, runs => v(&runs) },
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

async fn approve(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    decide(&session, &state, &id, form.csrf.as_deref(), true).await
}

async fn deny(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    decide(&session, &state, &id, form.csrf.as_deref(), false).await
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
