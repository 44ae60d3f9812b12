use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TOKEN, TestApp};

#[tokio::test]
async fn api_requires_the_token() {
    let app = TestApp::start().await;
    let resp = app.http.get(format!("{}/api/agents", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .http
        .get(format!("{}/api/agents", app.base))
        .bearer_auth("wrong-token-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = app.http.get(format!("{}/api/agents", app.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Health needs no token.
    assert_eq!(app.http.get(format!("{}/healthz", app.base)).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(format!("{}/readyz", app.base)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn agent_validation_and_lifecycle() {
    let app = TestApp::start().await;
    for (body, needle) in [
        (json!({"name": "Bad Name", "channel_id": "1"}), "invalid agent name"),
        (json!({"name": "a"}), "needs a channel_id"),
        (json!({"name": "a", "channel_id": "general"}), "not a Discord channel id"),
        (
            json!({"name": "a", "discord_webhook_url": "https://evil.example/api/webhooks/1/t"}),
            "discord_webhook_url",
        ),
        (json!({"name": "a", "channel_id": "1", "colour": "red"}), "unknown field"),
        (json!({"channel_id": "1"}), "missing field"),
    ] {
        let (status, v) = app.api_json(Method::POST, "/api/agents", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{body} -> {v}");
    }
    let (status, _) = app.api_json(Method::GET, "/api/agents", None).await;
    assert_eq!(status, 200);
    assert!(app.api_json(Method::GET, "/api/agents", None).await.1["items"].as_array().unwrap().is_empty());

    let url = "https://discord.com/api/webhooks/123/very-secret-token";
    let (status, v) = app
        .api_json(Method::POST, "/api/agents", Some(json!({"name": "hooky", "discord_webhook_url": url})))
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["discord_webhook_url"], "https://discord.com/api/webhooks/123/****");
    let (status, _) =
        app.api_json(Method::POST, "/api/agents", Some(json!({"name": "hooky", "channel_id": "1"}))).await;
    assert_eq!(status, 409);

    let (status, v) =
        app.api_json(Method::PATCH, "/api/agents/hooky", Some(json!({"channel_id": "55"}))).await;
    assert_eq!((status, v["channel_id"].as_str()), (200, Some("55")));
    let (status, v) = app
        .api_json(
            Method::PATCH,
            "/api/agents/hooky",
            Some(json!({"channel_id": null, "discord_webhook_url": null})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = app.api_json(Method::DELETE, "/api/agents/hooky", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.api_json(Method::GET, "/api/agents/hooky", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn webhook_secret_is_shown_once() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook =
        app.hook(json!({"agent": "builder", "source": "github", "name": "repo", "events": ["push"]})).await;
    let secret = hook.secret.clone().unwrap();
    assert!(hook.url.ends_with(&format!("/webhook/builder/{}", hook.id)));
    let (_, one) = app.api_json(Method::GET, &format!("/api/webhooks/{}", hook.id), None).await;
    let (_, all) = app.api_json(Method::GET, "/api/webhooks?agent=builder", None).await;
    let (_, patched) = app
        .api_json(
            Method::PATCH,
            &format!("/api/webhooks/{}", hook.id),
            Some(json!({"rate_limit_per_minute": 5})),
        )
        .await;
    for view in [&one, &all["items"][0], &patched] {
        assert!(view.get("secret").is_none(), "{view}");
        assert!(!view.to_string().contains(&secret));
    }
    assert_eq!(patched["rate_limit_per_minute"], 5);
    assert_eq!(patched["events"], json!(["push"]));
    // A user-supplied secret (e.g. one already configured in GitHub) is kept.
    let own = app
        .hook(json!({"agent": "builder", "source": "github", "secret": "an-existing-github-secret"}))
        .await;
    assert_eq!(own.secret.as_deref(), Some("an-existing-github-secret"));
}

#[tokio::test]
async fn unverified_hooks_must_be_explicit_and_are_flagged() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(json!({"agent": "builder"}))).await;
    assert_eq!(status, 201);
    assert_eq!(v["source"], "chorus", "the default verifies signatures");
    let (status, v) = app
        .api_json(Method::POST, "/api/webhooks", Some(json!({"agent": "builder", "source": "none"})))
        .await;
    assert_eq!(status, 201);
    assert!(v["secret"].is_null());
    assert!(v["warning"].as_str().unwrap().contains("not verified"));
    let resp = app.post(v["url"].as_str().unwrap(), &[], b"{\"a\":1}".to_vec()).await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn webhook_validation() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    for (body, status, needle) in [
        (json!({"agent": "builder", "source": "gitlub"}), 400, "unknown source"),
        (json!({"agent": "ghost"}), 400, "does not exist"),
        (json!({"agent": "builder", "type": "sideways"}), 400, "type must be"),
        (json!({"agent": "builder", "secret": "short"}), 400, "secret must be"),
        (
            json!({"agent": "builder", "source": "none", "secret": "0123456789abcdefg"}),
            400,
            "takes no secret",
        ),
        (
            json!({"agent": "builder", "source": "standard", "secret": "whsec_***not-base64***"}),
            400,
            "base64",
        ),
        (json!({"agent": "builder", "rate_limit_per_minute": 0}), 400, "rate_limit_per_minute"),
        (json!({"agent": "builder", "ip_allowlist": ["10.0.0.0/99"]}), 400, "ip_allowlist"),
        (json!({"agent": "builder", "template": "{{ unclosed"}), 400, "template"),
        (json!({"agent": "builder", "events": ["push events"]}), 400, "events"),
        (json!({"agent": "builder", "generic": {"header": "X-Sig"}}), 400, "generic settings"),
        (json!({"agent": "builder", "secrets": "typo"}), 400, "unknown field"),
    ] {
        let (got, v) = app.api_json(Method::POST, "/api/webhooks", Some(body.clone())).await;
        assert_eq!(got, status, "{body} -> {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{body} -> {v}");
    }
    let (_, list) = app.api_json(Method::GET, "/api/webhooks", None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "a refused create stored something");
    let (status, _) = app.api_json(Method::GET, "/api/webhooks/hk_nope", None).await;
    assert_eq!(status, 404);
    let (status, v) = app.api_json(Method::GET, "/api/deliveries?limit=0", None).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn deleted_hooks_answer_404() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "none"})).await;
    assert_eq!(app.post(&hook.url, &[], b"{}".to_vec()).await.status(), 202);
    let (status, _) = app.api_json(Method::DELETE, &format!("/api/webhooks/{}", hook.id), None).await;
    assert_eq!(status, 204);
    assert_eq!(app.post(&hook.url, &[], b"{}".to_vec()).await.status(), 404);
}
