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

/// Every other service's real payloads, posted to a `generic` hook with
/// no telling headers: recognised by shape, formatted by their service's
/// formatter, naming and linking what they are about.
#[test]
fn other_fixtures_are_recognised_and_formatted_by_their_service() {
    for path in chorus_testkit::fixture_files("other") {
        let name = stem(&path);
        let body = load(&path);
        if name == "slack.url_verification" {
            // A handshake, answered at ingress, never formatted.
            assert_eq!(chorus_providers::detect(&http::HeaderMap::new(), &body), None);
            continue;
        }
        let service = name.split('.').next().unwrap();
        let headers = http::HeaderMap::new();
        let detected =
            chorus_providers::detect(&headers, &body).unwrap_or_else(|| panic!("{name}: not recognised"));
        assert_eq!(detected.service.as_str(), service, "{name}");
        let event_type = chorus_providers::event_type(Source::Generic, &headers, &body);
        assert_eq!(event_type, detected.event_type, "{name}");
        let message = chorus_providers::format_payload(Source::Generic, &headers, &event_type, &body);
        assert!(
            !message.footer.as_deref().unwrap_or("").starts_with("Webhook"),
            "{name} fell back to the generic summary"
        );
        let (subject, link) = subject_and_link(service, &body);
        assert!(message.title.contains(&subject), "{name}: {:?} does not name {subject:?}", message.title);
        if let Some(link) = link {
            assert_eq!(message.url.as_deref(), Some(link.as_str()), "{name}: not linked");
        }
        insta::assert_json_snapshot!(format!("other__{name}"), message);
    }
}

/// What a service's message must name, read from the documented fields,
/// and the link it must carry when the payload has one.
fn subject_and_link(service: &str, body: &Value) -> (String, Option<String>) {
    let at = |p: &str| body.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    match service {
        "jira" => {
            let key = at("/issue/key").unwrap();
            let site = at("/issue/self").unwrap().split("/rest/api/").next().unwrap().to_owned();
            (key.clone(), Some(format!("{site}/browse/{key}")))
        }
        "sentry" => (
            at("/data/issue/title")
                .or_else(|| at("/data/event/title"))
                .or_else(|| at("/data/event/message"))
                .unwrap(),
            at("/data/event/web_url").or_else(|| at("/data/issue/permalink")),
        ),
        "alertmanager" | "grafana" => (
            at("/commonLabels/alertname")
                .or_else(|| at("/alerts/0/labels/alertname"))
                .unwrap_or_else(|| "alert".into()),
            None,
        ),
        "circleci" => (at("/project/name").unwrap(), at("/workflow/url")),
        "dockerhub" => (at("/repository/repo_name").unwrap(), at("/repository/repo_url")),
        "jenkins" => (at("/name").unwrap(), at("/build/full_url")),
        "stripe" => (at("/data/object/id").unwrap(), None),
        "slack" => ("Slack".into(), None),
        other => panic!("no expectations for {other}"),
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
fn generic_leads_with_what_happened_and_skips_noise() {
    let body = serde_json::json!({
        "id": 7, "count": 2, "avatar_url": "https://a/x.png", "status": "failed", "summary": "Backup failed",
        "url": "https://backups.example.net/7",
        "owner": {"id": 3, "login": "kim", "self": "https://api/3", "avatarUrls": {"48x48": "https://a/k.png"}, "repos_url": "https://api/r"},
    });
    let message = chorus_format::format_generic(Source::Generic, "backup", &body);
    let lines: Vec<&str> = message.description.lines().collect();
    assert_eq!(
        &lines[..3],
        ["**summary**: Backup failed", "**status**: failed", "**url**: https://backups.example.net/7"]
    );
    assert!(lines.contains(&"**id**: 7"), "a top-level id stays: {lines:?}");
    assert!(lines.contains(&"**owner.login**: kim"));
    for noise in ["avatar", "owner.id", "self", "repos_url"] {
        assert!(!message.description.contains(noise), "{noise} in {}", message.description);
    }
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
    let body = serde_json::json!({"action": "created", "thing": {"tier": "gold"}});
    let (event_type, message) = run(Source::Github, Some("sponsorship"), &body);
    assert_eq!(event_type, "sponsorship.created");
    assert!(message.description.contains("**thing.tier**: gold"));
}

/// A payload written here from a service's documentation: the headers
/// its sender adds, the body, the service it must be recognised as, and
/// texts its message must show.
type Case = (Vec<(&'static str, &'static str)>, Value, &'static str, Vec<&'static str>);

fn alerting_and_ci_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        (
            vec![],
            json!({"version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": "resolved", "receiver": "ops",
                   "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
                   "commonAnnotations": {}, "externalURL": "https://am.example.net",
                   "alerts": [
                       {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-1"}, "annotations": {"summary": "Disk 97% full"},
                        "generatorURL": "https://prom.example.net/graph?g0.expr=disk"},
                       {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-2"}, "annotations": {"summary": "Disk 95% full"}}]}),
            "alertmanager",
            vec!["RESOLVED DiskFull", "db-1", "db-2", "https://prom.example.net/graph?g0.expr=disk"],
        ),
        (
            vec![],
            json!({"name": "deploy-api", "url": "job/deploy-api/", "build": {"full_url": "https://ci.example.net/job/deploy-api/77/",
                   "number": 77, "phase": "COMPLETED", "status": "FAILURE", "duration": 95000,
                   "scm": {"branch": "origin/release", "commit": "0123456789abcdef"}, "log": "step 1\nerror: tests failed"}}),
            "jenkins",
            vec![
                "Pipeline Failed: deploy-api #77",
                "`release`",
                "`0123456`",
                "error: tests failed",
                "1m 35s",
            ],
        ),
        (
            vec![("circleci-event-type", "workflow-completed")],
            json!({"type": "workflow-completed", "happened_at": "2025-01-01T00:00:00Z",
                   "workflow": {"name": "nightly", "status": "failed", "url": "https://app.circleci.com/x/1",
                                "created_at": "2025-01-01T00:00:00Z", "stopped_at": "2025-01-01T00:02:05Z"},
                   "project": {"name": "shop", "slug": "gh/acme/shop"},
                   "pipeline": {"vcs": {"branch": "dev", "revision": "feedfacecafe", "commit": {"subject": "Bump deps"}}}}),
            "circleci",
            vec![
                "[shop] Pipeline Failed: workflow nightly",
                "`dev`",
                "Bump deps",
                "2m 5s",
                "https://app.circleci.com/x/1",
            ],
        ),
        (
            vec![("sentry-hook-resource", "metric_alert")],
            json!({"action": "critical", "installation": {"uuid": "u"},
                   "data": {"metric_alert": {"id": "9", "title": "p95 latency"}, "description_title": "p95 latency above 2s",
                            "description_text": "1.2k events in the last hour", "web_url": "https://sentry.io/alerts/9/"}}),
            "sentry",
            vec!["Metric alert critical: p95 latency above 2s", "1.2k events", "https://sentry.io/alerts/9/"],
        ),
    ]
}

fn other_cases() -> Vec<Case> {
    use serde_json::json;
    vec![
        (
            vec![],
            json!({"id": "evt_9", "object": "event", "type": "payment_intent.payment_failed", "livemode": true, "created": 1_700_000_000,
                   "data": {"object": {"id": "pi_42", "object": "payment_intent", "amount": 1999, "currency": "eur",
                                       "last_payment_error": {"message": "Your card was declined."}}}}),
            "stripe",
            vec![
                "payment_intent.payment_failed: pi_42",
                "19.99 EUR",
                "card was declined",
                "https://dashboard.stripe.com/events/evt_9",
            ],
        ),
        (
            vec![],
            json!({"webhookEvent": "comment_created", "timestamp": 1,
                   "issue": {"key": "OPS-7", "self": "https://acme.atlassian.net/rest/api/2/issue/1",
                             "fields": {"summary": "Rotate keys", "status": {"name": "In Progress"}}},
                   "comment": {"body": "Done for prod.", "author": {"displayName": "Kim"}}}),
            "jira",
            vec![
                "[OPS-7] Rotate keys",
                "Kim commented on",
                "Done for prod.",
                "https://acme.atlassian.net/browse/OPS-7",
            ],
        ),
        (
            vec![],
            json!({"push_data": {"tag": "v3", "pusher": "ci-bot"}, "callback_url": "https://registry.hub.docker.com/cb",
                   "repository": {"namespace": "acme", "name": "api"}}),
            "dockerhub",
            vec!["acme/api:v3", "ci-bot"],
        ),
    ]
}

/// Payloads with values no fixture has: the formatters read documented
/// fields, not fixture values.
#[test]
fn payloads_not_in_the_fixtures_are_read_by_their_documented_fields() {
    for (pairs, body, service, expected) in alerting_and_ci_cases().into_iter().chain(other_cases()) {
        let mut headers = http::HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        let detected =
            chorus_providers::detect(&headers, &body).unwrap_or_else(|| panic!("{service}: not recognised"));
        assert_eq!(detected.service.as_str(), service);
        let message = chorus_providers::format_payload(Source::None, &headers, &detected.event_type, &body);
        let shown = serde_json::to_string(&message).unwrap();
        for text in expected {
            assert!(shown.contains(text), "{service}: {text:?} missing from {shown}");
        }
    }
}

#[test]
fn anything_else_keeps_the_generic_summary() {
    let unknown = serde_json::json!({"title": "Backup done", "status": "ok"});
    assert_eq!(chorus_providers::detect(&http::HeaderMap::new(), &unknown), None);
    let message =
        chorus_providers::format_payload(Source::Generic, &http::HeaderMap::new(), "backup", &unknown);
    assert_eq!(message.title, "backup: Backup done");
}

/// Docker engine events in the shape the engine's `GET /events` documents
/// (`Type`, `Action`, `Actor.ID`, `Actor.Attributes`, `time`, `timeNano`),
/// with what the watcher adds to a `die` (`Container.State`, `Logs`).
#[test]
fn docker_engine_events_read_their_documented_fields() {
    use serde_json::json;
    let docker = chorus_providers::of(Source::Docker);
    let headers = http::HeaderMap::new();
    let cases = [
        (
            json!({"Type": "container", "Action": "die", "time": 1_800_000_000, "timeNano": 1_800_000_000_000_000_000_i64,
                   "Actor": {"ID": "f00d", "Attributes": {"name": "api", "image": "acme/api:9", "exitCode": "1"}},
                   "Container": {"State": {"ExitCode": 1, "OOMKilled": false,
                                           "StartedAt": "2027-01-15T07:00:00Z", "FinishedAt": "2027-01-15T08:00:00Z"}},
                   "Logs": "panic: config missing\n"}),
            "container.die",
            vec![
                "🚨 Container Stopped: api",
                "Exit code: **1**",
                "`acme/api:9`",
                "Uptime: 1h",
                "panic: config missing",
            ],
        ),
        (
            json!({"Type": "container", "Action": "health_status: healthy", "time": 1_800_000_000,
                   "Actor": {"ID": "f00d", "Attributes": {"name": "api"}}}),
            "container.health_status",
            vec!["💚 Container Healthy: api"],
        ),
        (
            json!({"Type": "image", "Action": "push", "time": 1_800_000_000,
                   "Actor": {"ID": "acme/api:9", "Attributes": {"name": "acme/api:9"}}}),
            "image.push",
            vec!["⬆️ Image Pushed: acme/api:9"],
        ),
        (
            json!({"Type": "network", "Action": "connect", "time": 1_800_000_000,
                   "Actor": {"ID": "n1", "Attributes": {"name": "backend", "container": "f00d"}}}),
            "network.connect",
            vec!["Docker network connect: backend"],
        ),
    ];
    for (body, event_type, expected) in cases {
        assert_eq!(docker.event_type(&headers, &body), event_type);
        assert!(docker.delivery_key(&headers, Some(&body)).is_some(), "{event_type}");
        let shown = serde_json::to_string(&docker.format(event_type, &body)).unwrap();
        for text in expected {
            assert!(shown.contains(text), "{event_type}: {text:?} missing from {shown}");
        }
    }
}

/// The events of one CI run name one subject (one message, edited), and
/// the events of one pull request one thread; other runs and pull
/// requests name others.
#[test]
fn one_run_one_subject_one_pull_request_one_thread() {
    use serde_json::json;
    let github = |event: &str, body: Value| {
        chorus_providers::format_payload(Source::Github, &http::HeaderMap::new(), event, &body)
    };
    let repo = json!({"full_name": "acme/app", "html_url": "https://github.com/acme/app"});
    let run = |id: u64, status: &str| {
        json!({"action": status, "repository": repo,
               "workflow_run": {"id": id, "name": "CI", "status": status, "html_url": "https://github.com/acme/app/actions/runs/1"}})
    };
    let queued = github("workflow_run.requested", run(7, "queued")).subject;
    assert!(queued.is_some());
    assert_eq!(github("workflow_run.completed", run(7, "completed")).subject, queued);
    assert_ne!(github("workflow_run.completed", run(8, "completed")).subject, queued);

    let pr = |n: u64| json!({"number": n, "title": "Fix", "html_url": "https://github.com/acme/app/pull/1", "user": {"login": "kim"}});
    let opened =
        github("pull_request.opened", json!({"action": "opened", "repository": repo, "pull_request": pr(5)}))
            .thread;
    assert!(opened.is_some());
    let review = json!({"action": "submitted", "repository": repo, "pull_request": pr(5),
                        "review": {"state": "approved", "user": {"login": "lee"}, "html_url": "https://github.com/acme/app/pull/5#r"}});
    assert_eq!(github("pull_request_review.submitted", review).thread, opened);
    let comment = json!({"action": "created", "repository": repo,
                         "issue": {"number": 5, "title": "Fix", "pull_request": {"url": "u"}, "html_url": "https://github.com/acme/app/pull/5"},
                         "comment": {"body": "LGTM", "user": {"login": "lee"}, "html_url": "https://github.com/acme/app/pull/5#c"}});
    assert_eq!(github("issue_comment.created", comment).thread, opened);
    let other =
        github("pull_request.opened", json!({"action": "opened", "repository": repo, "pull_request": pr(6)}))
            .thread;
    assert_ne!(other, opened);
    let issue_comment = json!({"action": "created", "repository": repo,
                               "issue": {"number": 9, "title": "Bug", "html_url": "https://github.com/acme/app/issues/9"},
                               "comment": {"body": "+1", "user": {"login": "lee"}}});
    assert_eq!(github("issue_comment.created", issue_comment).thread, None, "an issue is not a pull request");
}

/// What ingress reads of a body through its view (only the fields the
/// descriptor lists) is what it would read of the whole payload, for every
/// source over every payload the fixtures and the samples hold.
#[test]
fn the_ingress_view_reads_what_the_whole_payload_says() {
    let mut bodies: Vec<(String, Vec<u8>)> = ["github", "gitlab", "other"]
        .iter()
        .flat_map(|group| chorus_testkit::fixture_files(group))
        .map(|path| (stem(&path), std::fs::read(&path).unwrap()))
        .collect();
    for source in Source::ALL {
        let (sample, _) = chorus_providers::of(source).sample("d-1", jiff::Timestamp::UNIX_EPOCH, "note");
        bodies.push((format!("{source} sample"), serde_json::to_vec(&sample).unwrap()));
    }
    bodies.push(("handshake".into(), br#"{"type": "url_verification", "challenge": "c-1"}"#.to_vec()));
    let mut headers = http::HeaderMap::new();
    headers.insert("x-github-event", "push".parse().unwrap());
    for source in Source::ALL {
        let provider = chorus_providers::of(source);
        for (name, body) in &bodies {
            let whole: Value = serde_json::from_slice(body).unwrap();
            let view = chorus_providers::ingress_view(source, body).unwrap();
            let said = |v: &Value| {
                (
                    chorus_providers::event_type(source, &headers, v),
                    provider.delivery_key(&headers, Some(v)),
                    provider.challenge(v),
                )
            };
            assert_eq!(said(&view), said(&whole), "{source} over {name}");
        }
    }
}
