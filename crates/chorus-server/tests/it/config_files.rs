//! Hooks declared in `<data dir>/config/webhooks/`: applied at start and on
//! change, idempotently; a broken file changes nothing and is reported.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, github_headers, push_payload};

async fn config_hooks(app: &TestApp) -> Vec<Value> {
    let (_, list) = app.api_json(Method::GET, "/api/webhooks?type=incoming", None).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["created_by"].as_str().unwrap().starts_with("config:"))
        .cloned()
        .collect()
}

async fn config_errors(app: &TestApp) -> Vec<Value> {
    let (status, v) = app.api_json(Method::GET, "/api/config/errors", None).await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn audit_count(app: &TestApp) -> usize {
    let (_, v) = app.api_json(Method::GET, "/api/audit?limit=250", None).await;
    v["items"].as_array().unwrap().iter().filter(|e| e["via"] == "config").count()
}

/// Seed 001's "Brain creates webhook" file, with the secret reference
/// Chorus asks files for.
pub(crate) const SEED_FILE: &str = r#"{
  "name": "GitHub Urgent Issues",
  "provider": "github",
  "secret": "file:github.secret",
  "commands": [
    {
      "trigger": "issues.labeled",
      "action": "create_task",
      "agent": "planning",
      "conditions": {"label": "urgent"}
    }
  ]
}
"#;

#[tokio::test]
async fn config_files_apply_idempotently_and_report_errors() {
    let mut app = TestApp::start().await;
    app.agent("planning", "1").await;
    app.agent("builder", "2").await;
    let secret = "gh-file-secret-0123456789";
    app.config_file("github.secret", Some(&format!("{secret}\n"))).await;
    app.config_file("github-urgent-issues.json", Some(SEED_FILE)).await;

    let hooks = config_hooks(&app).await;
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let hook = &hooks[0];
    assert_eq!(
        (hook["name"].as_str(), hook["agent"].as_str(), hook["source"].as_str()),
        (Some("GitHub Urgent Issues"), Some("planning"), Some("github"))
    );
    assert_eq!(hook["created_by"], "config:github-urgent-issues");
    assert!(config_errors(&app).await.is_empty());
    let id = hook["id"].as_str().unwrap().to_owned();
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(shown["commands"][0]["trigger"], "issues.labeled");
    assert_eq!(shown["commands"][0]["conditions"], json!({"label": "urgent"}));
    assert!(shown.get("secret").is_none(), "the secret is never shown: {shown}");
    // The secret the file points at is the one that verifies.
    let body = push_payload();
    let url = hook["url"].as_str().unwrap();
    assert_eq!(
        app.post(url, &github_headers(secret, "push", "c-1", &body), body.clone()).await.status(),
        202
    );
    assert_eq!(
        app.post(url, &github_headers("not-the-secret-at-all", "push", "c-2", &body), body.clone())
            .await
            .status(),
        403
    );
    assert!(!app.data_files_contain(secret), "the secret reached the database in clear");
    assert_eq!(audit_count(&app).await, 1, "one create on record");

    // The same hook written differently is the same hook: nothing changes.
    let reformatted = serde_json::to_string(&serde_json::from_str::<Value>(SEED_FILE).unwrap()).unwrap();
    app.config_file("github-urgent-issues.json", Some(&reformatted)).await;
    assert_eq!(config_hooks(&app).await, hooks, "re-applying changed the hook");
    assert_eq!(audit_count(&app).await, 1, "re-applying put a change on record");

    // Broken files change nothing and say where they are broken.
    let cases = [
        (SEED_FILE.replace("\"create_task\"", "\"explode\""), 8, Some("commands[0].action")),
        (SEED_FILE.replace("\"provider\": \"github\",", "\"provider\": \"github\""), 4, None),
        (SEED_FILE.replace("file:github.secret", "a-literal-secret-0123456789"), 4, Some("secret")),
        (SEED_FILE.replace("\"planning\"", "\"ghost\""), 9, Some("commands[0].agent")),
        (
            SEED_FILE.replace("\"label\": \"urgent\"", "\"label\": \"urgent\", \"x\": {\"y\": 1}"),
            10,
            Some("commands[0].conditions.x"),
        ),
        (SEED_FILE.replace("\"name\":", "\"nmae\":"), 2, Some("nmae")),
        (SEED_FILE.replace("\"provider\": \"github\"", "\"provider\": \"gitlab\""), 3, Some("provider")),
    ];
    for (text, line, field) in cases {
        app.config_file("github-urgent-issues.json", Some(&text)).await;
        let errors = config_errors(&app).await;
        assert_eq!(errors.len(), 1, "{text}: {errors:?}");
        let e = &errors[0];
        assert_eq!(e["file"], "github-urgent-issues.json");
        assert_eq!((e["line"].as_u64(), e["field"].as_str()), (Some(line), field), "{text}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
        assert_eq!(config_hooks(&app).await, hooks, "a broken file changed the hook");
        let (_, shown_now) = app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await;
        assert_eq!(shown_now["commands"], shown["commands"], "a broken file changed the rules");
    }
    assert_eq!(audit_count(&app).await, 1);

    // Fixed: applied without a restart, the same hook (same URL) updated.
    let fixed =
        SEED_FILE.replace("GitHub Urgent Issues", "Urgent").replace("\"issues.labeled\"", "\"issues\"");
    app.config_file("github-urgent-issues.json", Some(&fixed)).await;
    assert!(config_errors(&app).await.is_empty());
    let now = config_hooks(&app).await;
    assert_eq!((now[0]["id"].as_str(), now[0]["name"].as_str()), (Some(id.as_str()), Some("Urgent")));
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(shown["commands"][0]["trigger"], "issues");
    assert_eq!(audit_count(&app).await, 3, "an update and a rule change");

    // A removed file takes its hook with it.
    app.config_file("github-urgent-issues.json", None).await;
    assert_eq!(
        app.post(url, &github_headers(secret, "push", "c-3", &body), body.clone()).await.status(),
        404
    );
    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let last = &audit["items"][0];
    assert_eq!(
        (last["via"].as_str(), last["action"].as_str(), last["target"].as_str()),
        (Some("config"), Some("webhooks.delete"), Some(id.as_str()))
    );
}

#[tokio::test]
async fn yaml_files_and_one_file_per_hook() {
    let mut app = TestApp::start().await;
    app.agent("builder", "2").await;
    app.config_file("gitlab.secret", Some("gitlab-file-secret-0123456789")).await;
    // YAML, with the agent at the top.
    let yaml = "name: GitLab builds\nagent: builder\nprovider: gitlab\nsecret: file:gitlab.secret\nevents: [pipeline]\ncommands:\n  - trigger: pipeline\n    priority: 3\n";
    app.config_file("gitlab.yaml", Some(yaml)).await;
    assert!(config_errors(&app).await.is_empty(), "{:?}", config_errors(&app).await);
    let hooks = config_hooks(&app).await;
    let gitlab = hooks.iter().find(|h| h["created_by"] == "config:gitlab").expect("the yaml hook");
    assert_eq!(gitlab["events"], json!(["pipeline"]));
    let broken_yaml = yaml.replace("priority: 3", "priority: high");
    app.config_file("gitlab.yaml", Some(&broken_yaml)).await;
    let errors = config_errors(&app).await;
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["field"].as_str()),
        (Some(8), Some("commands[0].priority")),
        "{errors:?}"
    );
    app.config_file("gitlab.yml", Some(yaml)).await;
    assert!(config_errors(&app).await.iter().any(|e| e["file"] == "gitlab.yml"), "two files for one hook");
    app.config_file("gitlab.yml", None).await;

    app.config_file("gitlab.yaml", None).await;
    assert!(config_hooks(&app).await.is_empty(), "the hook outlived its file");
}

#[tokio::test]
async fn a_file_may_name_its_hooks_id_and_secret_sealed() {
    let mut app = TestApp::start().await;
    app.agent("builder", "2").await;
    let key = chorus_store::MasterKey::from_bytes(&[9; 32]).unwrap();
    let secret = "sealed-in-the-file-0123456789";
    let sealed = key.seal_reference(&chorus_core::Secret::new(secret));
    let file = format!("agent: builder\nprovider: github\nid: hk_chosen0123456789\nsecret: {sealed}\n");
    app.config_file("known.yaml", Some(&file)).await;
    assert!(config_errors(&app).await.is_empty(), "{:?}", config_errors(&app).await);
    let hooks = config_hooks(&app).await;
    assert_eq!(hooks[0]["id"], "hk_chosen0123456789");
    let body = push_payload();
    let resp = app
        .post(hooks[0]["url"].as_str().unwrap(), &github_headers(secret, "push", "d-1", &body), body)
        .await;
    assert_eq!(resp.status(), 202);

    // Its id cannot change, and a value sealed under another key is refused.
    app.config_file("known.yaml", Some(&file.replace("hk_chosen0123456789", "hk_other0123456789"))).await;
    let errors = config_errors(&app).await;
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["field"].as_str()),
        (Some(3), Some("id")),
        "{errors:?}"
    );
    let other = chorus_store::MasterKey::from_bytes(&[1; 32])
        .unwrap()
        .seal_reference(&chorus_core::Secret::new(secret));
    app.config_file("known.yaml", Some(&file.replace(&sealed, &other))).await;
    let errors = config_errors(&app).await;
    assert_eq!(errors[0]["field"], "secret", "{errors:?}");
    assert!(errors[0]["message"].as_str().unwrap().contains("another master key"), "{errors:?}");
    assert_eq!(config_hooks(&app).await[0]["id"], "hk_chosen0123456789");
}
