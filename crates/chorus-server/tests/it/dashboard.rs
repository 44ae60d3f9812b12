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
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Sign in with `token`; the session cookie.
async fn sign_in(app: &TestApp, http: &reqwest::Client, token: &str) -> String {
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

async fn page(app: &TestApp, http: &reqwest::Client, cookie: &str, path: &str) -> (StatusCode, String) {
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
