//! Event types and formatter output over the real third-party payloads in
//! the shared fixtures, as ingress derives them through each descriptor.

use std::path::Path;

use chorus_core::{Message, Source};
use serde_json::Value;

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Format with the event type derived as ingress derives it, through the
/// provider's descriptor.
fn run(source: Source, header_event: Option<&str>, body: &Value) -> (String, Message) {
    let mut headers = http::HeaderMap::new();
    if let Some(event) = header_event {
        let name = if source == Source::Gitlab { "x-gitlab-event" } else { "x-github-event" };
        headers.insert(name, event.parse().unwrap());
    }
    let provider = chorus_providers::of(source);
    let event_type = provider.event_type(&headers, body);
    let message = provider.format(&event_type, body);
    (event_type, message)
}

#[test]
fn github_fixtures() {
    let files = chorus_testkit::fixture_files("github");
    for path in &files {
        let name = stem(path);
        let event = name.split('.').next().unwrap();
        let body = load(path);
        let (event_type, message) = run(Source::Github, Some(event), &body);
        assert!(event_type.starts_with(event), "{name}: {event_type}");
        assert!(!message.title.is_empty(), "{name}: empty title");
        if let (Some(repo), Some(url)) = (
            body.pointer("/repository/full_name").and_then(Value::as_str),
            body.pointer("/repository/html_url").and_then(Value::as_str),
        ) {
            assert!(message.title.contains(repo), "{name}: title {:?} does not name {repo}", message.title);
            let linked = message.url.as_deref().is_some_and(|u| u.starts_with(url))
                || message.fields.iter().any(|f| f.value.contains(url));
            assert!(linked, "{name}: no link to {url}");
        }
        assert!(
            !message.footer.as_deref().unwrap_or("").contains("Webhook event"),
            "{name} fell back to generic"
        );
        insta::assert_json_snapshot!(format!("github__{name}"), message);
    }
    if !files.is_empty() {
        assert!(files.len() >= 40, "expected the full GitHub fixture set");
    }
}

#[test]
fn gitlab_fixtures() {
    for path in chorus_testkit::fixture_files("gitlab") {
        let name = stem(&path);
        let body = load(&path);
        let (event_type, message) = run(Source::Gitlab, None, &body);
        let kind = body["object_kind"].as_str().unwrap();
        assert_eq!(event_type, kind, "{name}");
        let project = body
            .pointer("/project/path_with_namespace")
            .or_else(|| body.pointer("/project_name"))
            .and_then(Value::as_str)
            .unwrap();
        assert!(message.title.contains(project), "{name}: {:?} does not name {project}", message.title);
        assert!(message.footer.as_deref().unwrap().starts_with("GitLab"), "{name} fell back to generic");
        insta::assert_json_snapshot!(format!("gitlab__{name}"), message);
    }
}

#[test]
fn other_fixtures_through_the_generic_formatter() {
    for path in chorus_testkit::fixture_files("other") {
        let name = stem(&path);
        let body = load(&path);
        let (_, message) = run(Source::Generic, None, &body);
        assert!(!message.description.is_empty(), "{name}");
        insta::assert_json_snapshot!(format!("other__{name}"), message);
    }
}

#[test]
fn generic_puts_top_level_scalars_first_and_flattens() {
    let body: Value = serde_json::from_str(
        r#"{"nested": {"a": {"b": [1, 2]}, "list": [{"x": "y"}]}, "status": "firing", "count": 3, "long": "LONG"}"#,
    )
    .unwrap();
    let mut body = body;
    body["long"] = Value::String("z".repeat(500));
    let message = chorus_format::format_generic(Source::Generic, "alert", &body);
    let lines: Vec<&str> = message.description.lines().collect();
    assert_eq!(lines[0], "**status**: firing");
    assert_eq!(lines[1], "**count**: 3");
    assert!(
        lines[2].starts_with("**long**: zzz") && lines[2].ends_with('…') && lines[2].chars().count() < 220
    );
    assert!(lines.contains(&"**nested.a.b**: 1, 2"));
    assert!(lines.contains(&"**nested.list[0].x**: y"));
}

#[test]
fn generic_caps_huge_payloads() {
    let mut map = serde_json::Map::new();
    for i in 0..500 {
        map.insert(format!("k{i}"), Value::from(i));
    }
    let message = chorus_format::format_generic(Source::Generic, "big", &Value::Object(map));
    assert_eq!(message.description.lines().count(), 31);
    assert!(message.description.ends_with("… and 470 more"));
}

#[test]
fn unknown_github_events_fall_back_to_generic() {
    let body = serde_json::json!({"action": "created", "thing": {"id": 1}});
    let (event_type, message) = run(Source::Github, Some("sponsorship"), &body);
    assert_eq!(event_type, "sponsorship.created");
    assert!(message.description.contains("**thing.id**: 1"));
}
