//! The web dashboard at `/dashboard`: pages rendered here, over the service
//! layer, with a little JavaScript for live updates. Everything it needs is
//! inside the binary (templates, style, script), and it makes no request
//! to anywhere but this server.
//!
//! Sign-in takes an API token. The session is a cookie holding the token
//! and a CSRF token, sealed (AES-256-GCM) under the master key, so any
//! replica opens it and nothing is stored. Each request checks the token
//! again, so a revoked token ends its sessions at once; a read-only token
//! sees every page and can change nothing.

mod live;
mod outgoing;
mod pages;

use std::sync::Arc;

use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chorus_core::{AuditEntry, Secret, TokenScope};
use chorus_store::MasterKey;
use serde::Serialize;

use crate::{api::access, error::ApiError, state::AppState};

/// How long a session lasts.
pub(crate) const SESSION_HOURS: i64 = 12;
const COOKIE: &str = "chorus_session";
/// What session cookies are sealed for, so no other sealed value passes.
const PURPOSE: &str = "chorus dashboard session";

/// What the dashboard's handlers share beside the app state.
pub(crate) struct Dashboard {
    key: MasterKey,
    templates: minijinja::Environment<'static>,
}

/// The `/dashboard` routes.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    // Without the master key (an embedder that gave none), sessions are
    // sealed under a key of this process: they end when it stops.
    let key = state.settings.sealing_key.clone().unwrap_or_else(|| {
        use sha2::Digest as _;
        let seed = chorus_core::random_token("", 43);
        MasterKey::from_bytes(&sha2::Sha256::digest(seed.as_bytes())).expect("32 bytes")
    });
    let dashboard = Arc::new(Dashboard { key, templates: pages::templates() });
    pages::routes()
        .route("/dashboard/assets/{file}", get(pages::asset))
        .route("/dashboard/login", get(pages::login_form).post(pages::login))
        .route("/dashboard/logout", post(pages::logout))
        .layer(axum::Extension(dashboard))
        .layer(axum::middleware::map_response(secure_headers))
}

/// Pages may load only what this server serves, and never in a frame.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A signed-in user: who, what they may do, and their session's CSRF token.
pub(crate) struct Session {
    pub(crate) principal: access::Principal,
    pub(crate) csrf: String,
}

impl Session {
    pub(crate) fn can_change(&self) -> bool {
        self.principal.scope != TokenScope::Read
    }

    /// The state to make one change through, on record as this user's,
    /// through the dashboard.
    pub(crate) fn acting(&self, state: &AppState, action: &str, target: Option<String>) -> AppState {
        let entry = AuditEntry {
            at: state.clock.now(),
            actor: self.principal.actor.clone(),
            via: "dashboard".into(),
            action: action.into(),
            target,
        };
        access::acting(state, entry)
    }
}

/// The cookie's contents: expiry (ms since the epoch), CSRF token, API token.
fn seal_session(key: &MasterKey, token: &str, csrf: &str, expires_ms: i64) -> String {
    key.seal_text(&Secret::new(format!("{expires_ms}|{csrf}|{token}")), PURPOSE)
}

pub(crate) fn session_cookie(state: &AppState, dashboard: &Dashboard, token: &str) -> String {
    let expires = state.clock.now() + jiff::SignedDuration::from_hours(SESSION_HOURS);
    let csrf = chorus_core::random_token("", 32);
    let value = seal_session(&dashboard.key, token, &csrf, expires.as_millisecond());
    let secure = if state.settings.public_base.starts_with("https://") { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    )
}

pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Why a request has no session: it goes to sign-in, which brings the user
/// back to `next` afterwards.
pub(crate) struct SignIn {
    next: String,
}

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        let target = format!(
            "/dashboard/login?next={}",
            url::form_urlencoded::byte_serialize(self.next.as_bytes()).collect::<String>()
        );
        Redirect::to(&target).into_response()
    }
}

/// Where a request came from inside the dashboard: a GET's own path, a
/// form's page (the Referer), so that sign-in returns there.
fn return_path(parts: &Parts) -> String {
    let own = parts.uri.to_string();
    if parts.method == axum::http::Method::GET {
        return own;
    }
    parts
        .headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        })
        .filter(|p| safe_next(p))
        .unwrap_or_else(|| "/dashboard".to_owned())
}

/// Only paths inside the dashboard are returned to after sign-in.
pub(crate) fn safe_next(path: &str) -> bool {
    path.starts_with("/dashboard") && !path.starts_with("//") && !path.contains("://")
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let sign_in = |parts: &Parts| SignIn { next: return_path(parts) }.into_response();
        let Some(dashboard) = parts.extensions.get::<Arc<Dashboard>>().cloned() else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let Some(opened) =
            cookie_value(&parts.headers, COOKIE).and_then(|v| dashboard.key.open_text(v, PURPOSE))
        else {
            return Err(sign_in(parts));
        };
        let mut fields = opened.expose().splitn(3, '|');
        let (Some(expires), Some(csrf), Some(token)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(sign_in(parts));
        };
        if expires.parse::<i64>().map_or(true, |e| e <= state.clock.now().as_millisecond()) {
            return Err(sign_in(parts));
        }
        match access::principal_for(state, token).await {
            Ok(Some(principal)) => Ok(Session { principal, csrf: csrf.to_owned() }),
            Ok(None) => Err(sign_in(parts)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The page context every template gets.
#[derive(Serialize)]
pub(crate) struct Frame<'a> {
    pub(crate) title: &'a str,
    pub(crate) who: String,
    pub(crate) read_only: bool,
    pub(crate) csrf: &'a str,
}

impl Session {
    pub(crate) fn frame<'a>(&'a self, title: &'a str) -> Frame<'a> {
        Frame { title, who: self.principal.actor.clone(), read_only: !self.can_change(), csrf: &self.csrf }
    }

    /// Refuse a change without this session's CSRF token, or from a
    /// read-only token.
    pub(crate) fn may_change(&self, csrf: Option<&str>) -> Result<(), Refusal> {
        if !self.csrf_matches(csrf) {
            return Err(Refusal(
                "this form is out of date or was not sent by the dashboard; reload the page and try again",
            ));
        }
        if !self.can_change() {
            return Err(Refusal("this token is read-only"));
        }
        Ok(())
    }

    /// Whether a form carried this session's CSRF token.
    pub(crate) fn csrf_matches(&self, csrf: Option<&str>) -> bool {
        Secret::new(self.csrf.clone()).matches(csrf.unwrap_or_default().as_bytes())
    }
}

/// Why a change was refused (403).
pub(crate) struct Refusal(&'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        refused(StatusCode::FORBIDDEN, self.0)
    }
}

/// A plain page saying why a change was refused.
pub(crate) fn refused(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused · Chorus</title>\
         <link rel=\"stylesheet\" href=\"/dashboard/assets/style.css\"></head><body><main id=\"main\">\
         <h1>Refused</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>\
         </main></body></html>",
        minijinja::HtmlEscape(message)
    );
    (status, Html(body)).into_response()
}

impl Dashboard {
    pub(crate) fn render(&self, name: &str, context: minijinja::Value) -> Response {
        match self.templates.get_template(name).and_then(|t| t.render(context)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "dashboard page failed to render");
                refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "this page failed to render; the log has the cause",
                )
            }
        }
    }
}

/// An error of the service layer as a page (for what a form cannot show
/// beside a field).
pub(crate) fn error_page(e: &ApiError) -> Response {
    refused(e.status, &e.message)
}
