use std::{sync::Arc, time::Duration};

use chorus_core::{ManualClock, Secret, Source};
use jiff::SignedDuration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, chorus_headers, github_headers, push_payload};

#[tokio::test]
async fn incoming_webhook_delivers_message_to_channel() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let body = push_payload();
    let resp = app
        .post(&hook.url, &github_headers(hook.secret.as_deref().unwrap(), "push", "d-1", &body), body)
        .await;
    assert_eq!(resp.status(), 202);
    let event_id = resp.json::<serde_json::Value>().await.unwrap()["event_id"].as_str().unwrap().to_owned();
    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let (channel, message) = &messages[0];
    assert_eq!(channel, "4242");
    let embed = &message["embeds"][0];
    assert!(embed["title"].as_str().unwrap().starts_with("[Codertocat/Hello-World]"), "{embed}");
    assert!(embed["footer"]["text"].as_str().unwrap().contains(&event_id));
    // Through twilight's real client: bot auth, and mentions disabled.
    let request = app.discord.requests().into_iter().find(|r| r.status == 200).unwrap();
    assert_eq!(request.headers["authorization"], "Bot bot-token");
    assert_eq!(request.body["allowed_mentions"]["parse"], json!([]));
    // The delivery is recorded as succeeded, with its attempt.
    app.wait_attempts(1).await;
    let (_, deliveries) =
        app.api_json(Method::GET, &format!("/api/webhooks/{}/deliveries", hook.id), None).await;
    let delivery = &deliveries["items"][0];
    assert_eq!(delivery["status"], "succeeded");
    let (_, detail) = app
        .api_json(Method::GET, &format!("/api/deliveries/{}", delivery["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(detail["attempt_log"][0]["status_code"], 200);
}

#[tokio::test]
async fn incoming_webhook_validates_hmac_signature() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    let secret = hook.secret.clone().unwrap();
    assert_eq!(secret.len(), 43, "32 random bytes, URL-safe base64");
    let body = br#"{"event":"deploy","status":"ok"}"#.to_vec();
    let resp = app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.event_count(&hook.id).await, 1);
    // The raw bytes are what is verified: the same JSON re-serialized differs.
    let reformatted =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    let resp = app.post(&hook.url, &chorus_headers(&secret, &body), reformatted).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.event_count(&hook.id).await, 1);
}

#[tokio::test]
async fn incoming_webhook_rejects_invalid_signature() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let body = push_payload();
    let wrong = app
        .post(&hook.url, &github_headers("not-the-secret-at-all", "push", "d-1", &body), body.clone())
        .await;
    assert_eq!(wrong.status(), 403);
    let err: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(err["error"]["code"], "signature_invalid");
    let missing = app.post(&hook.url, &[("x-github-event".into(), "push".into())], body.clone()).await;
    assert_eq!(missing.status(), 401);
    let garbage = app
        .post(
            &hook.url,
            &[("x-hub-signature-256".into(), "sha256=zz".into()), ("x-github-event".into(), "push".into())],
            body,
        )
        .await;
    assert_eq!(garbage.status(), 403);
    assert_eq!(app.event_count(&hook.id).await, 0);
    assert!(app.discord.requests().is_empty());
}

#[tokio::test]
async fn incoming_webhook_rate_limited() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus", "rate_limit_per_minute": 3})).await;
    let secret = hook.secret.clone().unwrap();
    let body = br#"{"n":1}"#.to_vec();
    for _ in 0..3 {
        // Bad signatures do not spend the budget.
        let bad =
            app.post(&hook.url, &chorus_headers("wrong-secret-wrong-secret", &body), body.clone()).await;
        assert_eq!(bad.status(), 403);
        assert_eq!(app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await.status(), 202);
    }
    let limited = app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "20");
    assert_eq!(app.event_count(&hook.id).await, 3);
    clock.advance(SignedDuration::from_secs(20));
    assert_eq!(app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await.status(), 202);
    assert_eq!(app.post(&hook.url, &chorus_headers(&secret, &body), body).await.status(), 429);
}

#[tokio::test]
async fn incoming_webhook_formats_github_push_payload() {
    let app = TestApp::start().await;
    app.agent("builder", "7").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let body = push_payload();
    let resp = app
        .post(&hook.url, &github_headers(hook.secret.as_deref().unwrap(), "push", "d-1", &body), body)
        .await;
    assert_eq!(resp.status(), 202);
    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let embed = &messages[0].1["embeds"][0];
    assert_eq!(embed["title"], "[Codertocat/Hello-World] 1 new commit to master");
    assert!(embed["url"].as_str().unwrap().starts_with("https://github.com/Codertocat/Hello-World/compare/"));
    assert!(embed["description"].as_str().unwrap().contains("`199eddf`"));
    assert!(embed["description"].as_str().unwrap().contains("Update README"));
    let fields = embed["fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f["name"] == "Branch" && f["value"] == "`master`"));
    assert_eq!(embed["author"]["name"], "Codertocat");
}

#[tokio::test]
async fn incoming_webhook_formats_generic_json_payload() {
    let app = TestApp::start().await;
    app.agent("ops", "8").await;
    let hook = app.hook(json!({"agent": "ops", "source": "chorus"})).await;
    let body = br#"{"title":"CPU high on web-1","status":"firing","value":95.5,"labels":{"host":"web-1","team":"infra"}}"#;
    let resp =
        app.post(&hook.url, &chorus_headers(hook.secret.as_deref().unwrap(), body), body.to_vec()).await;
    assert_eq!(resp.status(), 202);
    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let embed = &messages[0].1["embeds"][0];
    assert_eq!(embed["title"], "webhook: CPU high on web-1");
    let description = embed["description"].as_str().unwrap();
    let lines: Vec<&str> = description.lines().collect();
    assert_eq!(lines[0], "**title**: CPU high on web-1");
    assert!(lines.contains(&"**status**: firing"));
    assert!(lines.contains(&"**value**: 95.5"));
    assert!(lines.contains(&"**labels.host**: web-1"));
}

#[tokio::test]
async fn incoming_webhook_nonexistent_agent_returns_404() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    app.agent("other", "2").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    let body = br#"{"a":1}"#.to_vec();
    let headers = chorus_headers(hook.secret.as_deref().unwrap(), &body);
    for path in [
        format!("/webhook/nobody/{}", hook.id),
        format!("/webhook/other/{}", hook.id),
        "/webhook/builder/hk_doesnotexist".to_owned(),
        "/webhook/builder/not-an-id".to_owned(),
        "/webhook/Bad%20Name/x".to_owned(),
    ] {
        let resp = app.post(&format!("{}{path}", app.base), &headers, body.clone()).await;
        assert_eq!(resp.status(), 404, "{path}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "not_found");
    }
    assert_eq!(app.event_count(&hook.id).await, 0);
}

#[tokio::test]
async fn incoming_webhook_disabled_agent_returns_503() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    let secret = hook.secret.clone().unwrap();
    let body = br#"{"a":1}"#.to_vec();
    let (status, _) = app.api_json(Method::POST, "/api/agents/builder/disable", None).await;
    assert_eq!(status, 200);
    let resp = app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await;
    assert_eq!(resp.status(), 503);
    // Without the secret nobody learns the agent is disabled.
    assert_eq!(app.post(&hook.url, &[], body.clone()).await.status(), 401);
    // A disabled hook is 409, and also only for holders of the secret.
    app.api_json(Method::POST, "/api/agents/builder/enable", None).await;
    app.api_json(Method::POST, &format!("/api/webhooks/{}/disable", hook.id), None).await;
    assert_eq!(app.post(&hook.url, &chorus_headers(&secret, &body), body.clone()).await.status(), 409);
    assert_eq!(
        app.post(&hook.url, &chorus_headers("wrong-secret-0123456789", &body), body.clone()).await.status(),
        403
    );
    assert_eq!(app.event_count(&hook.id).await, 0);
    app.api_json(Method::POST, &format!("/api/webhooks/{}/enable", hook.id), None).await;
    assert_eq!(app.post(&hook.url, &chorus_headers(&secret, &body), body).await.status(), 202);
}

#[tokio::test]
async fn bad_inputs_store_and_deliver_nothing() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    let secret = hook.secret.clone().unwrap();

    // Body over the limit: refused from Content-Length, before reading.
    let big = vec![b'x'; 64 * 1024 + 1];
    let resp = app.post(&hook.url, &chorus_headers(&secret, &big), big.clone()).await;
    assert_eq!(resp.status(), 413);
    // And while streaming, when no Content-Length is sent.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..80).map(|_| Ok(vec![b'y'; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures_stream(chunks));
    let resp = app.post(&hook.url, &chorus_headers(&secret, b""), stream).await;
    assert_eq!(resp.status(), 413);

    // Malformed JSON for a JSON source, correctly signed.
    let bad_json = b"{not json".to_vec();
    let resp = app.post(&hook.url, &chorus_headers(&secret, &bad_json), bad_json).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"]["code"], "malformed_body");

    assert_eq!(app.event_count(&hook.id).await, 0);
    assert!(app.discord.requests().is_empty());
}

/// Every sender that posts JSON: a correctly signed body that is not JSON
/// is refused with 400 and stores nothing. A `docker` hook takes no
/// requests at all (409).
#[tokio::test]
async fn malformed_payloads_of_every_provider_are_refused() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    app.agent("builder", "1").await;
    let body = b"{\"action\": \"opened\", not json".to_vec();
    let now = chorus_core::Clock::now(clock.as_ref());
    for source in Source::ALL.into_iter().filter(|s| s.expects_json()) {
        let mut spec = json!({"agent": "builder", "source": source.as_str()});
        let generic = chorus_core::GenericScheme {
            header: "x-signature".into(),
            encoding: chorus_core::SignatureEncoding::Hex,
            prefix: Some("sha256=".into()),
        };
        if source == Source::Generic {
            spec["generic"] = json!({"header": "x-signature", "encoding": "hex", "prefix": "sha256="});
        }
        let hook = app.hook(spec).await;
        let secret = Secret::new(hook.secret.clone().unwrap_or_default());
        let headers = chorus_verify::sign(source, Some(&generic), &secret, &body, now, "msg_1");
        let resp = app.post(&hook.url, &headers, body.clone()).await;
        let (status, answer) = (resp.status(), resp.json::<Value>().await.unwrap());
        if source.takes_requests() {
            assert_eq!(
                (status.as_u16(), &answer["error"]["code"]),
                (400, &json!("malformed_body")),
                "{source}"
            );
        } else {
            assert_eq!(
                (status.as_u16(), &answer["error"]["code"]),
                (409, &json!("watched_hook")),
                "{source}"
            );
        }
        assert_eq!(app.event_count(&hook.id).await, 0, "{source}");
    }
    assert!(app.discord.requests().is_empty());
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn stale_timestamps_are_refused() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "standard"})).await;
    let secret = Secret::new(hook.secret.clone().unwrap());
    assert!(secret.expose().starts_with("whsec_"));
    let body = br#"{"type":"invoice.paid"}"#;
    let signed_at = chorus_core::Clock::now(clock.as_ref()) - SignedDuration::from_secs(301);
    let headers = chorus_verify::sign(Source::Standard, None, &secret, body, signed_at, "msg_1");
    let resp = app.post(&hook.url, &headers, body.to_vec()).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("tolerance"));
    let fresh = chorus_verify::sign(
        Source::Standard,
        None,
        &secret,
        body,
        chorus_core::Clock::now(clock.as_ref()),
        "msg_2",
    );
    assert_eq!(app.post(&hook.url, &fresh, body.to_vec()).await.status(), 202);
    assert_eq!(app.event_count(&hook.id).await, 1);
}

#[tokio::test]
async fn duplicate_deliveries_are_acknowledged_but_not_routed_again() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let body = push_payload();
    let headers = github_headers(hook.secret.as_deref().unwrap(), "push", "same-delivery", &body);
    let first = app.post(&hook.url, &headers, body.clone()).await;
    assert_eq!(first.status(), 202);
    let first_id = first.json::<serde_json::Value>().await.unwrap()["event_id"].clone();
    let again = app.post(&hook.url, &headers, body.clone()).await;
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["event_id"], first_id);
    assert_eq!(again["duplicate"], true);
    // A new delivery id is a new event.
    let other = github_headers(hook.secret.as_deref().unwrap(), "push", "other-delivery", &body);
    assert_eq!(app.post(&hook.url, &other, body).await.status(), 202);
    app.discord.wait_for_messages(2, WAIT).await;
    assert_eq!(app.event_count(&hook.id).await, 2);
    let (_, d) = app.api_json(Method::GET, &format!("/api/webhooks/{}/deliveries", hook.id), None).await;
    assert_eq!(d["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn ip_allowlist_is_enforced() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let denied =
        app.hook(json!({"agent": "builder", "source": "chorus", "ip_allowlist": ["10.0.0.0/8"]})).await;
    let allowed =
        app.hook(json!({"agent": "builder", "source": "chorus", "ip_allowlist": ["127.0.0.0/8"]})).await;
    let body = br#"{"a":1}"#.to_vec();
    let resp =
        app.post(&denied.url, &chorus_headers(denied.secret.as_deref().unwrap(), &body), body.clone()).await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .post(&allowed.url, &chorus_headers(allowed.secret.as_deref().unwrap(), &body), body.clone())
        .await;
    assert_eq!(resp.status(), 202);
    // Without trusted proxies, a sender cannot talk its way in with the header.
    let mut forged = chorus_headers(denied.secret.as_deref().unwrap(), &body);
    forged.push(("x-forwarded-for".into(), "10.1.2.3".into()));
    assert_eq!(app.post(&denied.url, &forged, body).await.status(), 403);
}

/// Behind a trusted proxy, the allow-list sees the address the proxy
/// forwarded; the proxy's own address, or a forged hop, does not pass.
#[tokio::test]
async fn forwarded_for_counts_from_trusted_proxies() {
    let app = TestApp::start_trusting("127.0.0.0/8").await;
    app.agent("builder", "1").await;
    let hook =
        app.hook(json!({"agent": "builder", "source": "chorus", "ip_allowlist": ["203.0.113.0/24"]})).await;
    let secret = hook.secret.clone().unwrap();
    let body = br#"{"a":1}"#.to_vec();
    let post = |xff: Option<&str>| {
        let mut headers = chorus_headers(&secret, &body);
        if let Some(v) = xff {
            headers.push(("x-forwarded-for".into(), v.into()));
        }
        let (app, url, body) = (&app, hook.url.clone(), body.clone());
        async move { app.post(&url, &headers, body).await.status().as_u16() }
    };
    assert_eq!(post(Some("203.0.113.7")).await, 202);
    assert_eq!(post(Some("198.51.100.1")).await, 403);
    assert_eq!(post(Some("203.0.113.7, 198.51.100.1")).await, 403, "the nearest untrusted hop counts");
    assert_eq!(post(None).await, 403, "the proxy itself is not an allowed sender");
    assert_eq!(app.event_count(&hook.id).await, 1);
}

#[tokio::test]
async fn slack_url_verification_is_answered() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "slack"})).await;
    let secret = Secret::new(hook.secret.clone().unwrap());
    let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let headers = chorus_verify::sign(
        Source::Slack,
        None,
        &secret,
        body,
        chorus_core::Clock::now(&chorus_core::SystemClock),
        "",
    );
    let resp = app.post(&hook.url, &headers, body.to_vec()).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

/// Discord takes 5 messages per 5 s in a channel. A burst is packed into few
/// messages (embeds, then digests), sent one at a time so the limits learned
/// from the headers are kept: every event arrives, and no 429 comes back.
#[tokio::test]
async fn burst_to_one_channel_is_packed_within_discord_limits() {
    let app = TestApp::start_limited().await;
    app.agent("builder", "4242").await;
    let hook =
        app.hook(json!({"agent": "builder", "source": "github", "rate_limit_per_minute": 10_000})).await;
    let secret = hook.secret.clone().unwrap();
    let body = push_payload();
    let events = 120;
    for i in 0..events {
        let headers = github_headers(&secret, "push", &format!("burst-{i}"), &body);
        assert_eq!(app.post(&hook.url, &headers, body.clone()).await.status(), 202);
    }
    app.wait_attempts(events).await;
    let messages = app.discord.messages();
    for embed in messages.iter().flat_map(|(_, m)| m["embeds"].as_array().unwrap()) {
        if let Some(n) = embed["title"].as_str().and_then(|t| t.strip_suffix(" events")) {
            let lines = embed["description"].as_str().unwrap().lines().count();
            assert_eq!(n.parse::<usize>().unwrap(), lines, "a digest lists what it counts");
        }
    }
    let shown = app.discord.shown();
    assert_eq!(shown.len() as u64, events, "every event is in exactly one message");
    // One message per event would be 120 messages, two minutes at Discord's
    // pace; packed, about one per ten events (fewer once a backlog digests).
    assert!(messages.len() <= 20, "{} messages for {events} events", messages.len());
    let throttled = app.discord.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 0, "the channel's limit is kept by waiting, not by 429s");
    let (_, deliveries) =
        app.api_json(Method::GET, &format!("/api/webhooks/{}/deliveries?limit=250", hook.id), None).await;
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), events as usize);
    assert!(items.iter().all(|d| d["status"] == "succeeded"));
}

/// During a rotation's grace period both secrets verify; after it only the
/// new one. The new secret is shown once; bad rotation requests change
/// nothing.
#[tokio::test]
async fn rotated_secret_keeps_the_old_one_for_the_grace_period() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    app.agent("builder", "1").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github", "rate_limit_per_minute": 1000})).await;
    let old = hook.secret.clone().unwrap();
    let body = push_payload();
    let post = |secret: String, n: u32| {
        let headers = github_headers(&secret, "push", &format!("rot-{n}"), &body);
        let (app, url, body) = (&app, hook.url.clone(), body.clone());
        async move { app.post(&url, &headers, body).await.status().as_u16() }
    };
    let rotate = format!("/api/webhooks/{}/rotate-secret", hook.id);

    for bad in [json!({"grace_period_seconds": 31 * 86_400}), json!({"secret": "short"}), json!({"nope": 1})]
    {
        let (status, v) = app.api_json(Method::POST, &rotate, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"]["message"].as_str().is_some(), "{v}");
    }
    assert_eq!(post(old.clone(), 0).await, 202, "a refused rotation changes nothing");
    let (status, _) = app.api_json(Method::POST, "/api/webhooks/hk_nothere/rotate-secret", None).await;
    assert_eq!(status, 404);

    let (status, v) = app.api_json(Method::POST, &rotate, Some(json!({"grace_period_seconds": 3600}))).await;
    assert_eq!(status, 200, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(v["previous_secret_expires_at"], "2027-01-15T09:00:00Z");
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{}", hook.id), None).await;
    assert!(shown.get("secret").is_none(), "shown once: {shown}");

    assert_eq!(post(old.clone(), 1).await, 202, "the old secret verifies during the grace period");
    assert_eq!(post(new.clone(), 2).await, 202);
    clock.advance(SignedDuration::from_secs(3601));
    assert_eq!(post(old.clone(), 3).await, 403, "and not after it");
    assert_eq!(post(new.clone(), 4).await, 202);

    // No grace: the replaced secret stops at once. An empty body is the default.
    let (status, v) = app.api_json(Method::POST, &rotate, Some(json!({"grace_period_seconds": 0}))).await;
    assert_eq!(status, 200, "{v}");
    let newest = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(post(new, 5).await, 403);
    assert_eq!(post(newest, 6).await, 202);
    let resp = app.api(Method::POST, &rotate).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.event_count(&hook.id).await, 5);

    let open = app.hook(json!({"agent": "builder", "source": "none"})).await;
    let (status, v) =
        app.api_json(Method::POST, &format!("/api/webhooks/{}/rotate-secret", open.id), None).await;
    assert_eq!(status, 409, "{v}");
}

/// `POST /api/webhooks/{id}/test` on an incoming hook: a sample of its
/// source, signed with its secret, through the whole pipeline to the
/// channel, for every verification scheme; a hook that would refuse its
/// sender refuses the test too.
#[tokio::test]
async fn test_sends_go_through_the_whole_pipeline() {
    let app = TestApp::start().await;
    app.agent("builder", "77").await;
    let sources = [
        "github",
        "gitlab",
        "standard",
        "slack",
        "stripe",
        "jira",
        "sentry",
        "circleci",
        "bitbucket",
        "gitea",
        "generic",
        "chorus",
        "none",
    ];
    for source in sources {
        let mut body = json!({"agent": "builder", "source": source, "name": format!("{source} test")});
        if source == "github" {
            // Sent from inside the allow-list, which this test does not trip.
            body["ip_allowlist"] = json!(["192.30.252.0/22"]);
        }
        let hook = app.hook(body).await;
        let (status, v) = app.api_json(Method::POST, &format!("/api/webhooks/{}/test", hook.id), None).await;
        assert_eq!(status, 202, "{source}: {v}");
        assert_eq!((v["test"].as_bool(), v["source"].as_str()), (Some(true), Some(source)), "{v}");
        assert!(v["event_id"].as_str().is_some_and(|e| e.starts_with("evt_")), "{v}");
    }
    // Counted as events shown: several may share one packed message.
    app.discord.wait_for_shown(sources.len(), WAIT).await;
    let text = serde_json::to_string(&app.discord.messages()).unwrap();
    assert!(
        text.contains("[chorus/hello-world] 1 new commit to main"),
        "the GitHub sample is formatted: {text}"
    );
    assert!(text.contains("if you read this, the hook works"), "{text}");

    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    app.api_json(Method::POST, &format!("/api/webhooks/{}/disable", hook.id), None).await;
    let (status, v) = app.api_json(Method::POST, &format!("/api/webhooks/{}/test", hook.id), None).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("the hook refused the test"), "{v}");
    assert_eq!(app.event_count(&hook.id).await, 0);
    // A disabled agent: the sender would get 503, the person testing 409.
    app.api_json(Method::POST, &format!("/api/webhooks/{}/enable", hook.id), None).await;
    app.api_json(Method::POST, "/api/agents/builder/disable", None).await;
    let (status, v) = app.api_json(Method::POST, &format!("/api/webhooks/{}/test", hook.id), None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("agent_disabled")), "{v}");
    assert_eq!(app.event_count(&hook.id).await, 0);
}

/// A fixture, the headers its sender adds, and what its title must say.
type CiCase = (&'static str, Vec<(String, String)>, &'static str);

/// One unsigned URL for every CI system (`!hook ci on` makes one): Jenkins,
/// CircleCI, GitLab pipeline and GitHub workflow-run payloads, each with
/// the headers its sender adds, are recognised and formatted as their own.
#[tokio::test]
async fn a_ci_hook_recognises_each_ci_system() {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let app = TestApp::start().await;
    app.agent("builder", "78").await;
    let hook = app.hook(json!({"agent": "builder", "source": "none", "name": "CI/CD"})).await;
    let cases: [CiCase; 4] = [
        ("other/jenkins.notification.finished-success.json", vec![], "Pipeline Passed: support #148"),
        ("other/circleci.workflow-completed.json", vec![], "Pipeline Passed: workflow sample"),
        (
            "gitlab/pipeline.failed.json",
            vec![("x-gitlab-event".into(), "Pipeline Hook".into())],
            "Pipeline #",
        ),
        (
            "github/workflow_run.completed-success.json",
            vec![("x-github-event".into(), "workflow_run".into())],
            "Workflow ",
        ),
    ];
    for (i, (file, mut headers, _)) in cases.iter().cloned().enumerate() {
        headers.push(("content-type".into(), "application/json".into()));
        let body = std::fs::read(dir.join(file)).unwrap();
        let resp = app.post(&hook.url, &headers, body).await;
        assert_eq!(resp.status(), 202, "{file}");
        app.discord.wait_for_messages(i + 1, WAIT).await;
    }
    let titles: Vec<String> = app
        .discord
        .messages()
        .iter()
        .map(|(_, m)| m["embeds"][0]["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    for ((file, _, expected), title) in cases.iter().zip(&titles) {
        assert!(title.contains(expected), "{file}: {title:?}");
        assert!(!title.starts_with("Webhook event"), "{file} fell back to the generic summary");
    }
    let (_, events) = app.api_json(Method::GET, &format!("/api/webhooks/{}/events", hook.id), None).await;
    let mut types: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["build.finished", "pipeline", "workflow-completed", "workflow_run.completed"]);
}

/// Seed 002's aggregation: a hook with `aggregate: 5m` holds its events and
/// posts one grouped summary when the window ends (pinned clock), nothing
/// before; windows outside 1 min–24 h are refused.
#[tokio::test]
async fn an_aggregate_window_posts_one_grouped_summary_at_its_end() {
    // 1_800_000_000 is a multiple of 300: the window starts here.
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000 + 10));
    let app = TestApp::start_with(clock.clone(), 64 * 1024).await;
    app.agent("builder", "79").await;
    for bad in [json!("30s"), json!("25h"), json!("5 minutes"), json!(-5)] {
        let (status, v) = app
            .api_json(
                Method::POST,
                "/api/webhooks",
                Some(json!({"agent": "builder", "source": "github", "aggregate": bad})),
            )
            .await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some("aggregate")), "{bad}: {v}");
    }
    let hook =
        app.hook(json!({"agent": "builder", "source": "github", "name": "octo", "aggregate": "5m"})).await;
    let secret = hook.secret.clone().unwrap();
    let repo = json!({"full_name": "octo/app", "html_url": "https://github.com/octo/app"});
    let sends: Vec<(&str, Value)> = vec![
        ("push", json!({"ref": "refs/heads/main", "commits": [], "repository": repo})),
        ("push", json!({"ref": "refs/heads/feature-oauth", "commits": [], "repository": repo})),
        ("push", json!({"ref": "refs/heads/dev", "commits": [], "repository": repo})),
        (
            "pull_request",
            json!({"action": "opened", "number": 1, "repository": repo,
            "pull_request": {"title": "Add OAuth", "html_url": "https://github.com/octo/app/pull/1", "user": {"login": "kim"}}}),
        ),
        (
            "issues",
            json!({"action": "closed", "repository": repo,
            "issue": {"number": 9, "title": "Crash", "html_url": "https://github.com/octo/app/issues/9"}}),
        ),
    ];
    for (i, (event, body)) in sends.iter().enumerate() {
        let bytes = serde_json::to_vec(body).unwrap();
        let resp =
            app.post(&hook.url, &github_headers(&secret, event, &format!("agg-{i}"), &bytes), bytes).await;
        assert_eq!(resp.status(), 202);
    }
    // Every event is routed into the window; the channel hears nothing yet.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, events) = app.api_json(Method::GET, &format!("/api/webhooks/{}/events", hook.id), None).await;
        if events["items"].as_array().unwrap().iter().all(|e| e["status"] == "routed") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "events not routed: {events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.discord.messages().is_empty(), "nothing is posted inside the window");

    // The window ends; an event through another hook wakes the router now.
    clock.advance(jiff::SignedDuration::from_mins(5));
    let other = app.hook(json!({"agent": "builder", "source": "none"})).await;
    assert_eq!(app.post(&other.url, &[], r#"{"title": "wake"}"#).await.status(), 202);
    // Several pending messages may share one Discord message: look at every embed.
    let summaries = |d: &chorus_testkit::FakeDiscord| -> Vec<Value> {
        d.messages()
            .iter()
            .flat_map(|(_, m)| m["embeds"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["title"] == "octo: 5 events in 5m")
            .collect()
    };
    let waited = tokio::time::timeout(WAIT, async {
        while summaries(&app.discord).is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (_, hv) = app.api_json(Method::GET, &format!("/api/webhooks/{}", hook.id), None).await;
    assert!(waited.is_ok(), "no summary; hook {hv}; messages {:?}", app.discord.messages());
    let found = summaries(&app.discord);
    assert_eq!(found.len(), 1, "one summary");
    let text = found[0]["description"].as_str().unwrap();
    assert!(
        text.starts_with(
            "**Pushes**: 3 (main, feature-oauth, dev) · **PRs**: 1 opened · **Issues**: 1 closed"
        ),
        "{text}"
    );
    assert!(text.contains("(https://github.com/octo/app/pull/1)"), "each event is linked: {text}");

    let (status, v) = app
        .api_json(Method::PATCH, &format!("/api/webhooks/{}", hook.id), Some(json!({"aggregate": "off"})))
        .await;
    assert_eq!((status, &v["aggregate"]), (200, &Value::Null), "{v}");
}

/// A CircleCI workflow result on a branch, as CircleCI documents it.
fn circleci_result(status: &str, n: u32) -> Value {
    json!({"type": "workflow-completed", "id": format!("wf-{n}"), "happened_at": "2026-01-01T00:00:00Z",
           "workflow": {"name": "build", "status": status, "url": format!("https://app.circleci.com/w/{n}")},
           "project": {"name": "shop", "slug": "gh/acme/shop"},
           "pipeline": {"vcs": {"branch": "main", "revision": "0123456789abcdef"}}})
}

/// `notify: changes`: a pipeline that keeps failing posts once, then once
/// more when it passes again ("Fixed"); a rule can ask for the failure
/// streak ("third failure in a row").
#[tokio::test]
async fn notify_on_changes_and_failure_streaks() {
    let app = TestApp::start().await;
    app.agent("builder", "80").await;
    app.agent("oncall", "81").await;
    let (status, v) = app
        .api_json(
            Method::POST,
            "/api/webhooks",
            Some(json!({"agent": "builder", "source": "none", "notify": "sometimes"})),
        )
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("notify")), "{v}");
    let changes = app.hook(json!({"agent": "builder", "source": "none", "notify": "changes"})).await;
    let streaks = app
        .hook(json!({"agent": "oncall", "source": "none",
                     "commands": [{"trigger": "*", "action": "notify", "conditions": {"if": "streak >= 3"},
                                   "template": "🔥 {{ streak }} failures in a row on main"}]}))
        .await;
    // The same as a rule: `changed` is false only for a repeated result.
    app.agent("rules", "82").await;
    let ruled = app
        .hook(json!({"agent": "rules", "source": "none",
                     "commands": [{"trigger": "*", "action": "notify", "conditions": {"changed": true}}]}))
        .await;
    let results = ["failed", "failed", "failed", "success", "success", "failed"];
    for (i, status) in results.iter().enumerate() {
        for hook in [&changes, &streaks, &ruled] {
            let body = serde_json::to_vec(&circleci_result(status, i as u32)).unwrap();
            assert_eq!(app.post(&hook.url, &[], body).await.status(), 202);
        }
    }
    // Broke, fixed, broke again: three posts to builder's channel, and as
    // many through the rule.
    app.discord.wait_for_shown(7, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, events) =
            app.api_json(Method::GET, &format!("/api/webhooks/{}/events", streaks.id), None).await;
        if events["items"].as_array().unwrap().iter().all(|e| e["status"] != "received") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let embeds = |channel: &str| -> Vec<String> {
        app.discord
            .messages()
            .iter()
            .filter(|(c, _)| c == channel)
            .flat_map(|(_, m)| m["embeds"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                format!("{} {}", e["title"].as_str().unwrap_or(""), e["description"].as_str().unwrap_or(""))
            })
            .collect()
    };
    let builder = embeds("80");
    assert_eq!(builder.len(), 3, "{builder:?}");
    assert!(builder[0].contains("Pipeline Failed"), "{builder:?}");
    assert!(builder[1].starts_with("✅ Fixed: ") && builder[1].contains("Pipeline Passed"), "{builder:?}");
    assert!(builder[2].contains("Pipeline Failed"), "{builder:?}");
    let ruled = embeds("82");
    assert_eq!(ruled.len(), 3, "{ruled:?}");
    assert!(ruled[1].contains("Pipeline Passed"), "{ruled:?}");
    let oncall = embeds("81");
    assert_eq!(oncall.len(), 1, "only the third failure in a row: {oncall:?}");
    assert!(oncall[0].contains("3 failures in a row on main"), "{oncall:?}");
}

/// `threads: true`: a pull request's first message starts a Discord thread
/// and its reviews, comments and closing go into it; a deleted thread gives
/// way to a new one; a hook without threads posts in the channel.
#[tokio::test]
async fn a_pull_request_gets_a_thread_for_its_later_events() {
    let Some(dir) = chorus_testkit::fixtures_dir() else {
        eprintln!("skipped: ../shared/fixtures is not present");
        return;
    };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    app.agent("quiet", "99").await;
    let threaded = app.hook(json!({"agent": "builder", "source": "github", "threads": true})).await;
    let plain = app.hook(json!({"agent": "quiet", "source": "github"})).await;
    let mut n = 0;
    let mut post = |hook: &crate::support::Hook, file: &str| {
        n += 1;
        let body = std::fs::read(dir.join("github").join(file)).unwrap();
        let event = file.split('.').next().unwrap().to_owned();
        let headers = github_headers(hook.secret.as_deref().unwrap(), &event, &format!("thread-{n}"), &body);
        let url = hook.url.clone();
        let app = &app;
        async move { assert_eq!(app.post(&url, &headers, body).await.status(), 202) }
    };
    post(&threaded, "pull_request.opened.json").await;
    app.discord.wait_until("a thread", WAIT, |d| !d.threads().is_empty()).await;
    let messages = app.discord.messages();
    let (parent, message, name, thread) = app.discord.threads()[0].clone();
    assert_eq!((parent.as_str(), message.as_str()), ("4242", messages[0].1["id"].as_str().unwrap()));
    assert!(name.contains("Codertocat/Hello-World"), "{name}");

    for file in ["pull_request_review.submitted-commented.json", "pull_request_review_comment.created.json"] {
        post(&threaded, file).await;
    }
    let messages = app.discord.wait_for_messages(3, WAIT).await;
    assert!(messages[1..].iter().all(|(channel, _)| *channel == thread), "{messages:?}");

    // Someone deleted the thread: the next event starts another.
    app.discord.delete_channel(&thread);
    post(&threaded, "pull_request.closed.json").await;
    app.discord.wait_until("a second thread", WAIT, |d| d.threads().len() == 2).await;
    let messages = app.discord.messages();
    assert_eq!(messages.last().unwrap().0, "4242");

    post(&plain, "pull_request.opened.json").await;
    let messages = app.discord.wait_for_messages(5, WAIT).await;
    assert_eq!(messages.last().unwrap().0, "99");
    assert_eq!(app.discord.threads().len(), 2, "no thread without threads: true");
}
