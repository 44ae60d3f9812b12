use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TOKEN, TestApp, github_headers, push_payload};

/// A connection's first head is read ahead of the HTTP stack: what came
/// with it (a second, pipelined request; a head split over many writes) is
/// still served, in order.
#[tokio::test]
async fn heads_read_ahead_keep_pipelined_and_dribbled_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::start().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let ok = out.find("HTTP/1.1 200 OK").expect("the first answer");
    let missing = out.find("HTTP/1.1 404 Not Found").expect("the second answer");
    assert!(ok == 0 && missing > ok, "{out}");

    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for part in ["GE", "T /hea", "lthz HTTP/1.1\r", "\nHost: t\r\nConnection: close\r", "\n", "\r\n"] {
        s.write_all(part.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
    }
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
}

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

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Tokens made through the API: shown once, kept as digests, read-only ones
/// refused any change (403, nothing changed), revoked ones refused (401).
#[tokio::test]
async fn tokens_have_scopes_and_can_be_revoked() {
    let app = TestApp::start().await;
    for (body, needle) in [
        (json!({"name": "ci", "scope": "root"}), "scope must be admin or read"),
        (json!({"name": " ", "scope": "read"}), "name must be"),
        (json!({"name": "ci"}), "missing field"),
    ] {
        let (status, v) = app.api_json(Method::POST, "/api/tokens", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    let (status, read) =
        app.api_json(Method::POST, "/api/tokens", Some(json!({"name": "dashboard", "scope": "read"}))).await;
    assert_eq!(status, 201, "{read}");
    let read_token = read["token"].as_str().unwrap().to_owned();
    assert!(read_token.starts_with("chr_"));
    let (_, admin) = app
        .api_json(Method::POST, "/api/tokens", Some(json!({"name": "deploy bot", "scope": "admin"})))
        .await;
    let admin_token = admin["token"].as_str().unwrap().to_owned();

    // Read-only: reads work, changes are refused and change nothing.
    assert_eq!(call(&app, &read_token, Method::GET, "/api/agents", None).await.0, 200);
    let (status, v) =
        call(&app, &read_token, Method::POST, "/api/agents", Some(json!({"name": "x", "channel_id": "1"})))
            .await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
    assert_eq!(call(&app, &read_token, Method::GET, "/api/tokens", None).await.0, 403);
    assert_eq!(
        call(
            &app,
            &read_token,
            Method::DELETE,
            &format!("/api/tokens/{}", read["id"].as_str().unwrap()),
            None
        )
        .await
        .0,
        403
    );
    let (_, agents) = app.api_json(Method::GET, "/api/agents", None).await;
    assert!(agents["items"].as_array().unwrap().is_empty(), "{agents}");

    // A made admin token can change things and manage tokens.
    let (status, _) = call(
        &app,
        &admin_token,
        Method::POST,
        "/api/agents",
        Some(json!({"name": "builder", "channel_id": "1"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, listed) = call(&app, &admin_token, Method::GET, "/api/tokens", None).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|t| t.get("token").is_none() && t.get("hash").is_none()), "{listed}");
    assert!(
        !app.data_files_contain(&read_token) && !app.data_files_contain(&admin_token),
        "tokens kept as digests"
    );

    let (status, revoked) = call(
        &app,
        &admin_token,
        Method::DELETE,
        &format!("/api/tokens/{}", read["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (status, v) = call(&app, &read_token, Method::GET, "/api/agents", None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(app.api_json(Method::DELETE, "/api/tokens/tok_nothere", None).await.0, 404);
}

/// Every change through the API is on record with who, how and what;
/// reads, refused changes and event emission are not.
#[tokio::test]
async fn the_audit_log_records_every_change() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let resp = app
        .api(Method::POST, &format!("/api/webhooks/{}/disable", hook.id))
        .header("x-chorus-client", "cli")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, read) =
        app.api_json(Method::POST, "/api/tokens", Some(json!({"name": "viewer", "scope": "read"}))).await;
    let read_token = read["token"].as_str().unwrap();
    // Not on record: a read, a refused change, a bad request.
    app.api_json(Method::GET, "/api/agents", None).await;
    call(&app, read_token, Method::DELETE, "/api/agents/builder", None).await;
    assert_eq!(app.api_json(Method::POST, "/api/agents", Some(json!({"name": "Bad"}))).await.0, 400);
    app.api_json(Method::DELETE, &format!("/api/webhooks/{}", hook.id), None).await;

    let (status, log) = call(&app, read_token, Method::GET, "/api/audit?limit=3", None).await;
    assert_eq!(status, 200, "{log}");
    let (_, older) = app
        .api_json(Method::GET, &format!("/api/audit?cursor={}", log["next_cursor"].as_str().unwrap()), None)
        .await;
    let entries: Vec<Value> =
        log["items"].as_array().unwrap().iter().chain(older["items"].as_array().unwrap()).cloned().collect();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap_or("-").to_owned(),
                e["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let read_id = read["id"].as_str().unwrap().to_owned();
    assert_eq!(
        summary,
        [
            ("webhooks.delete".into(), hook.id.clone(), "api".into()),
            ("tokens.create".into(), read_id, "api".into()),
            ("webhooks.disable".into(), hook.id.clone(), "cli".into()),
            ("webhooks.create".into(), hook.id.clone(), "api".into()),
            ("agents.create".into(), "builder".into(), "api".into()),
        ]
    );
    assert!(entries.iter().all(|e| e["actor"] == "admin token (CHORUS_API_TOKEN)" && e["at"].is_string()));
    assert!(older["next_cursor"].is_null());
    // A malformed cursor is bad input on every paginated list, not a conflict.
    for bad in [
        "/api/audit?limit=0",
        "/api/audit?cursor=abc",
        "/api/deliveries?cursor=abc",
        "/api/audit?status=failed",
    ] {
        assert_eq!(app.api_json(Method::GET, bad, None).await.0, 400, "{bad}");
    }
}

/// A change that writes through the emitter (an outgoing test send) is on
/// record too: the audit rides the change's own transaction, whichever
/// part of Chorus makes the write.
#[tokio::test]
async fn changes_made_through_the_emitter_are_on_record() {
    let app = TestApp::start().await;
    let receiver = chorus_testkit::TestReceiver::start().await;
    let (id, _) = app.outgoing(json!({"url": receiver.url("/x"), "events": ["agent.commit"]})).await;
    let (status, _) = app.api_json(Method::POST, &format!("/api/webhooks/{id}/test"), None).await;
    assert_eq!(status, 202);
    receiver.wait_for(1, crate::support::WAIT).await;
    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap_or("-")))
        .collect();
    assert_eq!(actions, [("webhooks.test", id.as_str()), ("webhooks.create", id.as_str())], "{audit}");
}

/// Routing rules: created with the hook or one by one, validated field by
/// field (a refused rule changes nothing), ordered by priority, replaced
/// whole by PUT, gone with their hook.
#[tokio::test]
async fn routing_rules_are_validated_and_kept_in_priority_order() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    app.agent("planning", "2").await;
    let (status, created) = app
        .api_json(
            Method::POST,
            "/api/webhooks",
            Some(json!({"agent": "builder", "source": "github", "commands": [
                {"trigger": "issues.opened", "action": "create_task", "agent": "planning",
                 "template": "Analyze issue: {{ issue.title }}", "conditions": {"labels": ["bug", "enhancement"]}},
                {"trigger": "push", "priority": 5},
            ]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/webhooks/{id}/commands");
    let (_, list) = app.api_json(Method::GET, &path, None).await;
    let triggers: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|c| c["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["push", "issues.opened"], "highest priority first: {list}");
    assert_eq!(list["items"][0]["action"], "notify", "the default action");

    for (body, field) in [
        (json!({"trigger": "push", "action": "explode"}), "action"),
        (json!({"trigger": "push events"}), "trigger"),
        (json!({"trigger": "push", "agent": "ghost"}), "agent"),
        (json!({"trigger": "push", "template": "{% if %}"}), "template"),
        (json!({"trigger": "push", "action": "forward"}), "url"),
        (json!({"trigger": "push", "action": "forward", "url": "http://10.1.2.3/x"}), "url"),
        (json!({"trigger": "push", "url": "https://example.com/"}), "url"),
        (json!({"trigger": "push", "priority": 5000}), "priority"),
        (json!({"trigger": "push", "conditions": {"label": {"nested": true}}}), "conditions.label"),
    ] {
        let (status, v) = app.api_json(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let (status, v) = app.api_json(Method::POST, &path, Some(json!({"trigger": "push", "bogus": 1}))).await;
    assert_eq!(status, 400, "{v}");
    let (_, same) = app.api_json(Method::GET, &path, None).await;
    assert_eq!(same, list, "a refused rule changed the set");

    let (status, rule) = app
        .api_json(
            Method::POST,
            &path,
            Some(json!({"trigger": "pull_request", "action": "create_task", "priority": 9})),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_path = format!("{path}/{}", rule["id"].as_str().unwrap());
    let (status, updated) = app
        .api_json(Method::PUT, &rule_path, Some(json!({"trigger": "pull_request.opened", "priority": -1})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["id"].clone(), updated["created_at"].clone()),
        (rule["id"].clone(), rule["created_at"].clone())
    );
    let (_, list) = app.api_json(Method::GET, &path, None).await;
    assert_eq!(list["items"].as_array().unwrap().last().unwrap()["trigger"], "pull_request.opened");
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(shown["commands"], list["items"]);

    let (status, _) = app.api_json(Method::DELETE, &rule_path, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.api_json(Method::DELETE, &rule_path, None).await;
    assert_eq!(status, 404);
    let (status, v) = app.api_json(Method::PUT, &path, Some(json!([{"trigger": "*"}]))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let actions: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "webhooks.commands.create",
        "webhooks.commands.update",
        "webhooks.commands.delete",
        "webhooks.commands.replace",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let outgoing = app.outgoing(json!({"url": "https://8.8.8.8/hook", "events": ["agent.*"]})).await.0;
    let (status, _) = app.api_json(Method::GET, &format!("/api/webhooks/{outgoing}/commands"), None).await;
    assert_eq!(status, 400);
    app.api_json(Method::DELETE, &format!("/api/webhooks/{id}"), None).await;
    let (status, _) = app.api_json(Method::GET, &path, None).await;
    assert_eq!(status, 404);
}

/// The incoming log filters by type (exact or family), status and time.
#[tokio::test]
async fn the_event_log_filters() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let secret = hook.secret.clone().unwrap();
    let body = push_payload();
    for (event, n) in [("push", 0), ("pull_request", 1), ("push", 2)] {
        let headers = github_headers(&secret, event, &format!("d-{n}"), &body);
        assert_eq!(app.post(&hook.url, &headers, body.clone()).await.status(), 202);
    }
    let app = &app;
    let log = |query: String| {
        let path = format!("/api/webhooks/{}/events{query}", hook.id);
        async move { app.api_json(Method::GET, &path, None).await }
    };
    let (_, all) = log(String::new()).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "{all}");
    let (_, pushes) = log("?event_type=push".into()).await;
    assert_eq!(pushes["items"].as_array().unwrap().len(), 2, "{pushes}");
    let (_, prs) = log("?event_type=pull_request".into()).await;
    assert_eq!(prs["items"].as_array().unwrap().len(), 1, "{prs}");
    let first = all["items"].as_array().unwrap().last().unwrap()["received_at"].as_str().unwrap().to_owned();
    let (_, before) = log(format!("?until={first}")).await;
    assert!(before["items"].as_array().unwrap().is_empty(), "{before}");
    let (_, after) = log(format!("?since={first}")).await;
    assert_eq!(after["items"].as_array().unwrap().len(), 3, "{after}");
    for bad in [
        "?since=yesterday",
        "?status=lost",
        "?limit=251",
        "?sort=asc",
        &format!("?since={first}&until={first}"),
    ] {
        let (status, v) = log(bad.to_owned()).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
}

/// The OpenAPI document and the router agree: the same paths, and on each
/// path the same methods (the router's 405 answer lists what it has).
#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::start().await;
    let resp = app.http.get(format!("{}/api/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the document needs no token");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let documented: std::collections::BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routed: std::collections::BTreeSet<&str> = chorus_server::api_paths().into_iter().collect();
    assert_eq!(documented, routed, "documented paths differ from routed ones");
    for (path, item) in paths {
        let concrete: String =
            path.split('/').map(|s| if s.starts_with('{') { "x0" } else { s }).collect::<Vec<_>>().join("/");
        let resp = app.api(Method::TRACE, &concrete).send().await.unwrap();
        assert_eq!(resp.status(), 405, "TRACE {concrete}");
        let allow = resp.headers().get("allow").expect("405 names the allowed methods").to_str().unwrap();
        let mut routed: Vec<String> =
            allow.split(',').map(|m| m.trim().to_lowercase()).filter(|m| m != "head").collect();
        routed.sort();
        let mut documented: Vec<String> = item.as_object().unwrap().keys().cloned().collect();
        documented.sort();
        assert_eq!(routed, documented, "methods of {path}");
    }
}

/// A POST retried with its Idempotency-Key gets the first answer (the
/// secret included) and changes nothing more; the key with another body is
/// refused.
#[tokio::test]
async fn idempotency_keys_replay_the_first_answer() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let create = |key: &str, body: Value| {
        app.api(Method::POST, "/api/webhooks").header("Idempotency-Key", key).json(&body).send()
    };
    let body = json!({"agent": "builder", "source": "github", "name": "app"});
    let first = create("retry-me-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = create("retry-me-1", body.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the replay differs from the first answer");
    let secret = first["secret"].as_str().unwrap();
    assert!(!app.data_files_contain(secret), "the kept answer holds the secret in clear");
    let (_, list) = app.api_json(Method::GET, "/api/webhooks", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "the retry made a second hook");

    let other = create("retry-me-1", json!({"agent": "builder", "source": "gitlab"})).await.unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["error"]["code"], "idempotency_key_reused");
    // A refused request is not kept: fixed, it goes through under its key.
    let bad = create("retry-me-2", json!({"agent": "ghost"})).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(create("retry-me-2", json!({"agent": "builder"})).await.unwrap().status(), 201);
    for key in ["", &"k".repeat(256), "has space"] {
        let resp = create(key, body.clone()).await.unwrap();
        assert_eq!(resp.status(), 400, "key {key:?}");
    }
    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let creates =
        audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "webhooks.create").count();
    assert_eq!(creates, 2, "a replay was put on record: {audit}");
}

/// Agents and hooks come in pages like every other list.
#[tokio::test]
async fn agent_and_hook_lists_are_paged() {
    let app = TestApp::start().await;
    for name in ["c", "a", "b"] {
        app.agent(name, "1").await;
        app.hook(json!({"agent": name, "source": "none"})).await;
    }
    for (path, key) in [("/api/agents", "name"), ("/api/webhooks", "id")] {
        let (_, all) = app.api_json(Method::GET, path, None).await;
        let all: Vec<Value> = all["items"].as_array().unwrap().iter().map(|i| i[key].clone()).collect();
        assert_eq!(all.len(), 3);
        let (_, first) = app.api_json(Method::GET, &format!("{path}?limit=2"), None).await;
        let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
        let (_, second) = app.api_json(Method::GET, &format!("{path}?limit=2&cursor={cursor}"), None).await;
        assert!(second["next_cursor"].is_null(), "{second}");
        let paged: Vec<Value> = first["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(second["items"].as_array().unwrap())
            .map(|i| i[key].clone())
            .collect();
        assert_eq!(paged, all, "{path}");
        let (status, _) = app.api_json(Method::GET, &format!("{path}?limit=0"), None).await;
        assert_eq!(status, 400);
    }
    let (_, agents) = app.api_json(Method::GET, "/api/agents", None).await;
    let names: Vec<&str> =
        agents["items"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

/// Without CHORUS_DISCORD_PUBLIC_KEY the interactions endpoint is off.
#[tokio::test]
async fn interactions_need_a_public_key() {
    let app = TestApp::start().await;
    let resp =
        app.http.post(format!("{}/interactions", app.base)).body(r#"{"type":1}"#).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("CHORUS_DISCORD_PUBLIC_KEY"), "{v}");
}

/// `/metrics` answers any API token (read-only ones too) in Prometheus's
/// text format, read here by Prometheus's own Python parser: requests by
/// source and answer, refused signatures by reason, body sizes, and what
/// the store holds.
#[tokio::test]
async fn metrics_are_read_by_a_prometheus_parser() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app
        .hook(json!({"agent": "builder", "source": "github",
                     "commands": [{"trigger": "push", "action": "notify"}]}))
        .await;
    let body = crate::support::push_payload();
    let secret = hook.secret.clone().unwrap();
    let ok = app
        .post(&hook.url, &crate::support::github_headers(&secret, "push", "m-1", &body), body.clone())
        .await;
    assert_eq!(ok.status(), 202);
    // Routed and sent: the router's counts are in.
    app.discord.wait_for_messages(1, crate::support::WAIT).await;
    let forged = app
        .post(
            &hook.url,
            &crate::support::github_headers("wrong-secret-0123456789", "push", "m-2", &body),
            body,
        )
        .await;
    assert_eq!(forged.status(), 403);

    let unauthenticated = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let (_, token) =
        app.api_json(Method::POST, "/api/tokens", Some(json!({"name": "prometheus", "scope": "read"}))).await;
    let scraped = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = scraped.text().await.unwrap();
    assert!(text.contains("chorus_ingress_requests_total{source=\"github\",status=\"202\"} 1"), "{text}");
    assert!(
        text.contains(
            "chorus_ingress_verification_failures_total{source=\"github\",reason=\"invalid_signature\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("chorus_events_routed_total{status=\"routed\"} 1"), "{text}");
    assert!(text.contains("chorus_rules_total{action=\"notify\",result=\"fired\"} 1"), "{text}");
    assert!(text.contains("chorus_discord_rate_limited_total 0"), "{text}");

    let Some(python) = chorus_testkit::python() else { return };
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the parser refused the text:\n{text}");
    let families: Value = serde_json::from_slice(&output.stdout).unwrap();
    // The parser names counters without `_total`, as Prometheus does.
    assert_eq!(families["chorus_ingress_requests"]["type"], "counter", "{families}");
    assert_eq!(families["chorus_ingress_body_bytes"]["type"], "histogram", "{families}");
    let body_count = families["chorus_ingress_body_bytes"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == "chorus_ingress_body_bytes_count")
        .unwrap()[2]
        .as_f64()
        .unwrap();
    assert!((body_count - 2.0).abs() < f64::EPSILON, "two bodies read: {families}");
    assert_eq!(families["chorus_events"]["type"], "gauge", "{families}");
    // Every write so far (agent, hook, events, routing) went through group
    // commits: both histograms counted them, and agree on how many.
    let sample = |family: &str, name: &str| {
        families[family]["samples"].as_array().unwrap().iter().find(|s| s[0] == name).unwrap()[2]
            .as_f64()
            .unwrap()
    };
    for family in ["chorus_store_commit_writes", "chorus_store_commit_duration_seconds"] {
        assert_eq!(families[family]["type"], "histogram", "{families}");
    }
    let commits = sample("chorus_store_commit_writes", "chorus_store_commit_writes_count");
    assert!(commits >= 3.0, "{families}");
    assert!(sample("chorus_store_commit_writes", "chorus_store_commit_writes_sum") >= commits);
    let timed = sample("chorus_store_commit_duration_seconds", "chorus_store_commit_duration_seconds_count");
    assert!((timed - commits).abs() < f64::EPSILON, "{families}");
    assert!(sample("chorus_store_commit_duration_seconds", "chorus_store_commit_duration_seconds_sum") > 0.0);
}
