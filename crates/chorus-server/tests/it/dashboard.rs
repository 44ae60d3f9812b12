//! The dashboard over real HTTP: sign-in and its cookie, CSRF, read-only
//! tokens, expired sessions, and changes proven by their effect on senders
//! and on the audit log. (The browser's view is in tests/browser.)

use std::sync::Arc;

use chorus_core::ManualClock;
use jiff::SignedDuration;
use reqwest::{Method, StatusCode, redirect::Policy};
use serde_json::json;

use crate::support::{TOKEN, TestApp, github_headers, push_payload};

fn encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A client that does not follow redirects, so each answer is seen.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Sign in with `token`; the session cookie.
pub(crate) async fn sign_in(app: &TestApp, http: &reqwest::Client, token: &str) -> String {
    let resp = http
        .post(format!("{}/dashboard/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", token), ("next", "/dashboard/hooks")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains(token), "the token is sealed in the cookie: {cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

pub(crate) async fn page(
    app: &TestApp,
    http: &reqwest::Client,
    cookie: &str,
    path: &str,
) -> (StatusCode, String) {
    let resp = http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap();
    let status = resp.status();
    let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (status, location.unwrap_or(unescape(&resp.text().await.unwrap())))
}

/// HTML text as a person reads it (the templates escape `/` and quotes).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The CSRF token in a page's forms.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn post_form(
    app: &TestApp,
    http: &reqwest::Client,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_toggling_and_refusing_forged_or_read_only_changes() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github", "name": "Pushes"})).await;
    let http = browser();

    // Without a session: to sign-in, remembering the page.
    let (status, location) = page(&app, &http, "", &format!("/dashboard/hooks/{}", hook.id)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/dashboard/login?next=%2Fdashboard%2Fhooks%2F{}", hook.id));
    let wrong = http
        .post(format!("{}/dashboard/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", "not-a-token"), ("next", "/dashboard/hooks")]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("not valid"));

    let cookie = sign_in(&app, &http, TOKEN).await;
    let (status, html) = page(&app, &http, &cookie, "/dashboard/hooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Pushes") && html.contains(&format!("/dashboard/hooks/{}/disable", hook.id)),
        "{html}"
    );
    let token = csrf(&html);

    // A forged form (no CSRF token) changes nothing.
    let disable = format!("/dashboard/hooks/{}/disable", hook.id);
    let forged = post_form(&app, &http, &cookie, &disable, &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let body = push_payload();
    let secret = hook.secret.clone().unwrap();
    let send = |d: &'static str| {
        let headers = github_headers(&secret, "push", d, &body);
        let (app, url, body) = (&app, hook.url.clone(), body.clone());
        async move { app.post(&url, &headers, body).await }
    };
    assert_eq!(send("d-1").await.status(), 202);

    // The real form turns the hook off: the sender gets 409, and the
    // audit log names the dashboard.
    let done = post_form(&app, &http, &cookie, &disable, &[("csrf", &token)]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(send("d-2").await.status(), 409);
    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let last = &audit["items"][0];
    assert_eq!(
        (last["via"].as_str(), last["action"].as_str()),
        (Some("dashboard"), Some("webhooks.disable")),
        "{audit}"
    );

    // A read-only token sees the page with every control disabled and is
    // refused if it posts anyway.
    let (_, made) =
        app.api_json(Method::POST, "/api/tokens", Some(json!({"name": "viewer", "scope": "read"}))).await;
    let reader = sign_in(&app, &http, made["token"].as_str().unwrap()).await;
    let (_, html) = page(&app, &http, &reader, "/dashboard/hooks").await;
    assert!(html.contains("read-only"));
    let enable = format!("/dashboard/hooks/{}/enable", hook.id);
    let button = html.split(&enable).nth(1).unwrap().split("</button>").next().unwrap();
    assert!(button.contains("disabled"), "{button}");
    let refused = post_form(&app, &http, &reader, &enable, &[("csrf", &csrf(&html))]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(send("d-3").await.status(), 409);

    // A revoked token's session ends at once.
    app.api_json(Method::DELETE, &format!("/api/tokens/{}", made["id"].as_str().unwrap()), None).await;
    let (status, _) = page(&app, &http, &reader, "/dashboard/hooks").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Signing out ends the session in the browser.
    let out = post_form(&app, &http, &cookie, "/dashboard/logout", &[("csrf", &token)]).await;
    assert!(out.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn sessions_expire_and_send_the_user_back_where_they_were() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    assert_eq!(page(&app, &http, &cookie, "/dashboard/audit").await.0, StatusCode::OK);
    clock.advance(SignedDuration::from_hours(13));
    let (status, location) = page(&app, &http, &cookie, "/dashboard/audit?x=1").await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/dashboard/login?next=%2Fdashboard%2Faudit%3Fx%3D1")
    );
    let (_, form) = page(&app, &http, "", "/dashboard/login?next=%2Fdashboard%2Faudit%3Fx%3D1").await;
    assert!(form.contains("value=\"/dashboard/audit?x=1\"") && form.contains("session ended"), "{form}");
    // Only pages of the dashboard are returned to.
    let (_, form) = page(&app, &http, "", "/dashboard/login?next=https%3A%2F%2Fevil.example").await;
    assert!(form.contains("value=\"/dashboard/hooks\""), "{form}");
}

#[tokio::test]
async fn forms_show_the_services_errors_beside_their_fields_and_change_nothing() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    let (_, html) = page(&app, &http, &cookie, "/dashboard/hooks/new").await;
    let token = csrf(&html);
    let bad = post_form(
        &app,
        &http,
        &cookie,
        "/dashboard/hooks",
        &[("csrf", &token), ("agent", "builder"), ("source", "github"), ("webhook_id", "X!")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let html = unescape(&bad.text().await.unwrap());
    assert!(html.contains("id=\"webhook_id-error\""), "{html}");
    assert_eq!(
        app.api_json(Method::GET, "/api/webhooks", None).await.1["items"].as_array().unwrap().len(),
        0
    );

    let made = post_form(
        &app,
        &http,
        &cookie,
        "/dashboard/hooks",
        &[("csrf", &token), ("agent", "builder"), ("source", "github"), ("name", "Pushes")],
    )
    .await;
    assert_eq!(made.status(), StatusCode::OK);
    let html = unescape(&made.text().await.unwrap());
    let secret = html.split("id=\"hook-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let url = html.split("id=\"hook-url\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let id = url.rsplit('/').next().unwrap().to_owned();
    let body = push_payload();
    assert_eq!(
        app.post(&url, &github_headers(&secret, "push", "d-1", &body), body.clone()).await.status(),
        202
    );
    let (_, detail) = page(&app, &http, &cookie, &format!("/dashboard/hooks/{id}")).await;
    assert!(!detail.contains(&secret), "the secret is shown once");

    let rules = format!("/dashboard/hooks/{id}/rules");
    let bad = post_form(
        &app,
        &http,
        &cookie,
        &rules,
        &[("csrf", &token), ("trigger", "push"), ("action", "explode")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("id=\"rule-action-error\""));
    let bad = post_form(
        &app,
        &http,
        &cookie,
        &rules,
        &[("csrf", &token), ("trigger", "push"), ("action", "notify"), ("conditions", "[1]")],
    )
    .await;
    assert!(bad.text().await.unwrap().contains("id=\"rule-conditions-error\""));
    assert_eq!(
        app.api_json(Method::GET, &format!("/api/webhooks/{id}/commands"), None).await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let ok = post_form(
        &app,
        &http,
        &cookie,
        &rules,
        &[("csrf", &token), ("trigger", "push"), ("action", "create_task"), ("template", "Review {{ ref }}")],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let (_, listed) = app.api_json(Method::GET, &format!("/api/webhooks/{id}/commands"), None).await;
    assert_eq!(listed["items"][0]["action"], "create_task", "{listed}");
}

#[tokio::test]
async fn subscriptions_pause_resume_and_recover_from_the_dashboard() {
    let app = TestApp::start().await;
    let receiver = chorus_testkit::TestReceiver::start().await;
    receiver.set_default(chorus_testkit::Reply::status(500));
    let (sub, _) = app
        .outgoing(json!({
            "url": receiver.url("/in"), "events": ["custom.*"], "name": "Audit trail",
            "retry": {"strategy": "fixed", "max_attempts": 1, "initial_delay_ms": 100, "max_delay_ms": 100, "jitter": false},
        }))
        .await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;

    // A failed attempt shows in the figures and the chart.
    let first = app.emit("custom.one", None, json!({"n": 1})).await;
    receiver.wait_for(1, crate::support::WAIT).await;
    app.wait_attempts(1).await;
    let (_, html) = page(&app, &http, &cookie, "/dashboard/subscriptions").await;
    assert!(html.contains("Audit trail") && html.contains("1 attempts, 0.0% succeeded"), "{html}");
    assert!(html.contains("<svg") && html.contains("fill=\"#c92a2a\""), "a red bar for the failure: {html}");
    let token = csrf(&html);

    // Paused: what is emitted waits; resumed: it arrives.
    receiver.set_default(chorus_testkit::Reply::status(200));
    let pause = format!("/dashboard/subscriptions/{sub}/pause");
    assert_eq!(
        post_form(&app, &http, &cookie, &pause, &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{sub}"), None).await;
    assert_eq!(shown["paused"], true, "{shown}");
    app.emit("custom.two", None, json!({"n": 2})).await;
    let resume = format!("/dashboard/subscriptions/{sub}/resume");
    assert_eq!(
        post_form(&app, &http, &cookie, &resume, &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let got = receiver.wait_for(2, crate::support::WAIT).await;
    assert_eq!(got[1].json()["event"], "custom.two");

    // The failed one is sent again by Recover.
    let recover = format!("/dashboard/subscriptions/{sub}/recover");
    assert_eq!(
        post_form(&app, &http, &cookie, &recover, &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let got = receiver.wait_for(3, crate::support::WAIT).await;
    assert_eq!(got[2].json()["event"], "custom.one");
    assert_eq!(got[2].json()["data"], json!({"n": 1}));
    app.wait_attempts(3).await;
    let (_, delivery) = app.api_json(Method::GET, &format!("/api/deliveries/{}", first[0]), None).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
}

#[tokio::test]
async fn rules_reorder_edit_and_go_and_secrets_rotate_from_the_hook_page() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app
        .hook(json!({"agent": "builder", "source": "github", "commands": [
            {"trigger": "push", "action": "notify", "priority": 5},
            {"trigger": "issues", "action": "create_task", "priority": 1},
        ]}))
        .await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    let (_, html) = page(&app, &http, &cookie, &format!("/dashboard/hooks/{}", hook.id)).await;
    let token = csrf(&html);
    let triggers = || async {
        let (_, listed) =
            app.api_json(Method::GET, &format!("/api/webhooks/{}/commands", hook.id), None).await;
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r["trigger"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let before = triggers().await;
    assert_eq!(before.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), ["push", "issues"]);
    let second = &before[1].0;

    let up = format!("/dashboard/hooks/{}/rules/{second}/up", hook.id);
    assert_eq!(
        post_form(&app, &http, &cookie, &up, &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let after = triggers().await;
    assert_eq!(after.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), ["issues", "push"]);
    assert_eq!(after[0].0, *second, "the rule keeps its id");

    let edit = format!("/dashboard/hooks/{}/rules/{second}", hook.id);
    let bad = post_form(
        &app,
        &http,
        &cookie,
        &edit,
        &[("csrf", &token), ("trigger", "issues"), ("action", "create_task"), ("priority", "many")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let html = unescape(&bad.text().await.unwrap());
    assert!(
        html.contains(&format!("id=\"edit-{second}-priority-error\"")),
        "the error is beside the edited rule's field: {html}"
    );
    assert!(!html.contains("id=\"rule-priority-error\""), "not beside the new rule's: {html}");
    let edited = post_form(
        &app,
        &http,
        &cookie,
        &edit,
        &[("csrf", &token), ("trigger", "issues.opened"), ("action", "create_task"), ("priority", "20")],
    )
    .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    assert_eq!(triggers().await[0], (second.clone(), "issues.opened".to_owned()));

    let remove = format!("/dashboard/hooks/{}/rules/{second}/remove", hook.id);
    assert_eq!(
        post_form(&app, &http, &cookie, &remove, &[("csrf", &token)]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(triggers().await.len(), 1);

    // A rotation shows the new secret once; both verify during the grace.
    let rotated =
        post_form(&app, &http, &cookie, &format!("/dashboard/hooks/{}/rotate", hook.id), &[("csrf", &token)])
            .await;
    let html = unescape(&rotated.text().await.unwrap());
    let fresh = html.split("id=\"new-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let body = push_payload();
    for (secret, delivery) in [(fresh.as_str(), "d-1"), (hook.secret.as_deref().unwrap(), "d-2")] {
        let resp = app.post(&hook.url, &github_headers(secret, "push", delivery, &body), body.clone()).await;
        assert_eq!(resp.status(), 202);
    }
}

#[tokio::test]
async fn agents_turn_off_and_tasks_list_from_the_dashboard() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app
        .hook(json!({"agent": "builder", "source": "github", "commands": [
            {"trigger": "push", "action": "create_task", "template": "Write the release notes"},
        ]}))
        .await;
    let body = push_payload();
    let resp = app
        .post(&hook.url, &github_headers(hook.secret.as_deref().unwrap(), "push", "d-0", &body), body.clone())
        .await;
    assert_eq!(resp.status(), 202);
    let accepted: serde_json::Value = resp.json().await.unwrap();
    crate::rules::routed(&app, &hook.id, accepted["event_id"].as_str().unwrap()).await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    let (_, html) = page(&app, &http, &cookie, "/dashboard/tasks").await;
    assert!(html.contains("Write the release notes"), "{html}");
    let (_, html) = page(&app, &http, &cookie, "/dashboard/tasks?status=done").await;
    assert!(!html.contains("Write the release notes"), "{html}");
    let (_, html) = page(&app, &http, &cookie, "/dashboard/agents").await;
    let token = csrf(&html);
    let off = post_form(&app, &http, &cookie, "/dashboard/agents/builder/disable", &[("csrf", &token)]).await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let resp = app
        .post(&hook.url, &github_headers(hook.secret.as_deref().unwrap(), "push", "d-1", &body), body)
        .await;
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn the_live_stream_says_refresh_when_an_event_arrives() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    let (status, _) = page(&app, &http, &cookie, "/dashboard/live?topic=everything").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = page(&app, &http, "", &format!("/dashboard/live?hook={}", hook.id)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let mut stream = http
        .get(format!("{}/dashboard/live?hook={}", app.base, hook.id))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let body = push_payload();
    let resp = app
        .post(&hook.url, &github_headers(hook.secret.as_deref().unwrap(), "push", "d-1", &body), body)
        .await;
    assert_eq!(resp.status(), 202);
    let mut seen = String::new();
    let read = async {
        while !seen.contains("event: refresh") {
            let chunk = stream.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(crate::support::WAIT, read).await.expect("a refresh within the wait");
}

#[tokio::test]
async fn workflows_turn_off_from_the_dashboard() {
    let app = TestApp::start().await;
    let definition = json!({
        "name": "nightly", "secret": "workflow-secret-0123456789",
        "steps": [{"name": "say", "tool": "memory_store", "args": {"fact": "ran"}}],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    let http = browser();
    let cookie = sign_in(&app, &http, TOKEN).await;
    let (_, html) = page(&app, &http, &cookie, "/dashboard/runs").await;
    assert!(html.contains("/dashboard/workflows/nightly/disable"), "{html}");
    let off =
        post_form(&app, &http, &cookie, "/dashboard/workflows/nightly/disable", &[("csrf", &csrf(&html))])
            .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let body = serde_json::to_vec(&json!({"go": true})).unwrap();
    let headers = github_headers("workflow-secret-0123456789", "push", "w-1", &body);
    let resp = app.post(&format!("{}/webhooks/nightly", app.base), &headers, body).await;
    assert_eq!(resp.status(), 409);
}
