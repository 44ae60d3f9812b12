//! The subscriptions page: each outgoing subscription with its last day in
//! figures and a chart, and pause, resume, enable, disable and recover.

use std::{fmt::Write as _, sync::Arc};

use axum::{
    Extension, Form, Router,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chorus_core::{HookStats, OutgoingHook};
use minijinja::context;

use super::{
    Dashboard, Session, error_page,
    pages::{CsrfForm, v},
};
use crate::{
    error::ApiError,
    service::{self, hooks::Found, views::OutgoingView},
    state::AppState,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/subscriptions", get(page))
        .route("/dashboard/subscriptions/{id}/{verb}", post(change))
}

async fn page(
    session: Session,
    State(state): State<AppState>,
    Extension(dashboard): Extension<Arc<Dashboard>>,
) -> Response {
    let result = async {
        let now = state.clock.now();
        let mut subs = Vec::new();
        for hook in state.store.outgoing_hooks(None).await? {
            let figures = state.store.hook_stats(&hook.id, now).await?;
            let chart = minijinja::Value::from_safe_string(chart(&figures));
            subs.push(context! { sub => v(&OutgoingView::of(&hook, None)), stats => v(&figures), chart });
        }
        Ok::<_, ApiError>(subs)
    }
    .await;
    match result {
        Ok(subs) => dashboard.render(
            "subscriptions.html",
            context! { frame => v(&session.frame("Subscriptions")), section => "subscriptions", subs },
        ),
        Err(e) => error_page(&e),
    }
}

/// The last day as an SVG chart: a bar per hour (attempts, the failed part
/// red) and the hour's median latency as a line. Drawn here, so the page
/// needs no script and the chart no request.
pub(super) fn chart(stats: &HookStats) -> String {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    let step = W / 24.0;
    let most = stats.hourly.iter().map(|h| h.attempts).max().unwrap_or(0).max(1) as f64;
    let slowest = stats.hourly.iter().filter_map(|h| h.p50_ms).max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{} attempts in the last day, {}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"{W}\" height=\"{H}\" fill=\"#f1f3f5\"/>",
        stats.attempts_last_day,
        stats.success_rate.map_or_else(|| "none yet".to_owned(), |r| format!("{:.1}% succeeded", r * 100.0)),
    );
    let mut line = Vec::new();
    for (i, hour) in stats.hourly.iter().enumerate() {
        let x = i as f64 * step + 1.0;
        let total = hour.attempts as f64 / most * (H - 10.0);
        let good = hour.succeeded as f64 / most * (H - 10.0);
        if hour.attempts > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#c92a2a\"><title>{}: {} attempts, {} succeeded</title></rect>\
                 <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{good:.1}\" fill=\"#2b8a3e\"/>",
                H - total,
                step - 2.0,
                total - good,
                hour.start,
                hour.attempts,
                hour.succeeded,
                H - good,
                step - 2.0,
            );
        }
        if let Some(p50) = hour.p50_ms {
            line.push(format!("{:.1},{:.1}", x + step / 2.0, H - p50 as f64 / slowest * (H - 10.0)));
        }
    }
    if line.len() > 1 {
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#3b5bdb\" stroke-width=\"2\"/>",
            line.join(" ")
        );
    }
    svg.push_str("</svg>");
    svg
}

async fn change(
    session: Session,
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session.may_change(form.csrf.as_deref()) {
        return refusal.into_response();
    }
    let result = async {
        let hook = find(&state, &id).await?;
        let acting = session.acting(&state, &format!("webhooks.{verb}"), Some(hook.id.to_string()));
        match verb.as_str() {
            "pause" | "resume" => {
                service::outgoing::set_paused(&acting, &hook, verb == "pause").await?;
            }
            "enable" | "disable" => {
                service::hooks::set_enabled(&acting, &Found::Outgoing(hook), verb == "enable").await?;
            }
            "recover" => {
                let since = state.clock.now() - jiff::SignedDuration::from_hours(24);
                service::outgoing::recover(&acting, &hook, since).await?;
            }
            _ => return Err(ApiError::not_found(format!("no such change: {verb}"))),
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/dashboard/subscriptions").into_response(),
        Err(e) => error_page(&e),
    }
}

async fn find(state: &AppState, id: &str) -> Result<OutgoingHook, ApiError> {
    match service::hooks::find_any(state, id).await? {
        Found::Outgoing(h) => Ok(h),
        Found::Incoming(_) => Err(ApiError::not_found(format!("{id} is an incoming hook"))),
    }
}
