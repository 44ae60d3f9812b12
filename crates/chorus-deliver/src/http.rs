//! The HTTP sink: outgoing subscribers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use base64::Engine as _;
use chorus_core::{
    ClaimedDelivery, Clock, HookId, HttpSpec, OutgoingAuth, SendError, SendOutcome, SignatureScheme, Sink,
    TargetKind,
};
use reqwest::{StatusCode, header::HeaderMap};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    ratelimit::RateLimiter,
    ssrf::{GuardedResolver, SsrfGuard},
};

/// `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("Chorus-Webhook/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is kept in the attempts log.
const EXCERPT: usize = 1024;
/// How long a send held back by the destination's concurrency limit waits.
const BUSY_WAIT: Duration = Duration::from_millis(100);

/// Sends deliveries to outgoing subscribers: signs, authenticates, applies
/// each destination's timeout, rate limit and concurrency, and refuses
/// non-public addresses at connect time.
pub struct HttpSink {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
    clock: Arc<dyn Clock>,
    limiter: RateLimiter,
    slots: Mutex<HashMap<HookId, Arc<Semaphore>>>,
}

/// An HTTP client whose connections obey `guard` (checked on the addresses
/// actually connected to) and that treats a redirect as the answer.
pub fn guarded_client(guard: Arc<SsrfGuard>) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // A redirect is a failure: following it could leave the checked host.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver(guard)))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client configuration is valid")
}

impl HttpSink {
    /// A sink whose connections obey `guard`.
    pub fn new(guard: Arc<SsrfGuard>, clock: Arc<dyn Clock>) -> Self {
        let client = guarded_client(guard.clone());
        Self { client, guard, clock, limiter: RateLimiter::default(), slots: Mutex::default() }
    }

    fn slot(&self, hook: &HookId, size: u32) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().expect("slots lock");
            slots
                .entry(hook.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(size.max(1) as usize)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}

fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    // HTTP-date form.
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let secs = at.duration_since(now).as_secs().clamp(0, 86_400);
    Some(Duration::from_secs(secs as u64))
}

async fn excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() < EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(EXCERPT);
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

fn build_request(
    client: &reqwest::Client,
    spec: &HttpSpec,
    delivery: &ClaimedDelivery,
    body: Vec<u8>,
    now: jiff::Timestamp,
) -> Result<reqwest::RequestBuilder, SendError> {
    let hook = &spec.hook;
    let method = reqwest::Method::from_bytes(hook.method.as_str().as_bytes()).expect("static method names");
    let id = delivery.delivery.id.as_str();
    let event = delivery.delivery.payload["event"].as_str().unwrap_or_default().to_owned();
    let mut req = client
        .request(method, &hook.url)
        .timeout(Duration::from_millis(hook.timeout_ms))
        .header("content-type", "application/json")
        .header("x-webhook-event", event)
        .header("x-webhook-id", id)
        .header("x-webhook-timestamp", now.to_string());
    for (name, value) in &hook.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    req = match &spec.auth {
        OutgoingAuth::None => req,
        OutgoingAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
        OutgoingAuth::Bearer { token } => req.bearer_auth(token),
        OutgoingAuth::ApiKey { header_name, key } => req.header(header_name.as_str(), key.as_str()),
    };
    req = match hook.signature {
        SignatureScheme::Chorus => req.header(
            chorus_verify::headers::CHORUS_SIGNATURE,
            chorus_verify::sign_body_hex(&spec.secret, &body),
        ),
        SignatureScheme::Standard => {
            let sign = |secret| {
                chorus_verify::sign_standard(secret, id, now.as_second(), &body)
                    .map_err(|e| SendError::Permanent { status: None, message: format!("cannot sign: {e}") })
            };
            let mut signature = sign(&spec.secret)?;
            // Standard Webhooks carries several signatures so receivers keep
            // verifying with the old secret while they switch to the new one.
            if let Some(previous) = &spec.previous_secret {
                signature = format!("{signature} {}", sign(previous)?);
            }
            req.header(chorus_verify::headers::STANDARD_ID, id)
                .header(chorus_verify::headers::STANDARD_TIMESTAMP, now.as_second().to_string())
                .header(chorus_verify::headers::STANDARD_SIGNATURE, signature)
        }
    };
    Ok(req.body(body))
}

#[async_trait]
impl Sink for HttpSink {
    fn kinds(&self) -> Vec<TargetKind> {
        vec![TargetKind::Http]
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        match delivery.delivery.target {
            chorus_core::Target::Forward { .. } => return self.forward(delivery).await,
            chorus_core::Target::Reply { .. } => return self.reply(delivery).await,
            _ => {}
        }
        let Some(spec) = &delivery.http else {
            return Err(SendError::Permanent {
                status: None,
                message: "the subscription was deleted".into(),
            });
        };
        let hook = &spec.hook;
        let now = self.clock.now();
        if let Some(per_minute) = hook.rate_limit_per_minute
            && let Err(wait) = self.limiter.check_smooth(&hook.id, per_minute, now)
        {
            return Err(SendError::Throttled { retry_after: Duration::from_secs_f64(wait) });
        }
        let Some(_permit) = self.slot(&hook.id, hook.max_concurrency) else {
            return Err(SendError::Throttled { retry_after: BUSY_WAIT });
        };
        check_literal(&self.guard, &hook.url)?;
        let body = serde_json::to_vec(&delivery.delivery.payload).expect("a JSON value serializes");
        let request = build_request(&self.client, spec, delivery, body, now)?;
        self.exchange(request, hook.timeout_ms).await
    }
}

/// How long a forward may take.
const FORWARD_TIMEOUT_MS: u64 = 10_000;

impl HttpSink {
    /// A rule's forward: the stored body to the rule's URL, signed with the
    /// incoming hook's secret, with the delivery id as idempotency key.
    async fn forward(&self, delivery: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        let p = &delivery.delivery.payload;
        let bad = |what: &str| SendError::Permanent {
            status: None,
            message: format!("forward job without {what}"),
        };
        let url = p["url"].as_str().ok_or_else(|| bad("a url"))?;
        let body = p["body_b64"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(|| bad("a body"))?;
        check_literal(&self.guard, url)?;
        let id = delivery.delivery.id.as_str();
        let now = self.clock.now();
        let mut req = self
            .client
            .post(url)
            .timeout(Duration::from_millis(FORWARD_TIMEOUT_MS))
            .header("content-type", p["content_type"].as_str().unwrap_or("application/json"))
            .header("x-webhook-event", p["event_type"].as_str().unwrap_or_default())
            .header("x-webhook-id", id)
            .header("idempotency-key", id)
            .header("x-webhook-timestamp", now.to_string())
            .header("x-chorus-event-id", p["event_id"].as_str().unwrap_or_default());
        if let Some(secret) = &delivery.signing_secret {
            req = if p["signature"] == "standard" {
                // Standard Webhooks keys are base64: the hook's secret, as
                // bytes, is the key, so receivers verify with
                // `whsec_<base64 of the secret>`.
                let key = chorus_core::Secret::new(format!(
                    "whsec_{}",
                    base64::engine::general_purpose::STANDARD.encode(secret.expose().as_bytes())
                ));
                let signature =
                    chorus_verify::sign_standard(&key, id, now.as_second(), &body).map_err(|e| {
                        SendError::Permanent { status: None, message: format!("cannot sign: {e}") }
                    })?;
                req.header(chorus_verify::headers::STANDARD_ID, id)
                    .header(chorus_verify::headers::STANDARD_TIMESTAMP, now.as_second().to_string())
                    .header(chorus_verify::headers::STANDARD_SIGNATURE, signature)
            } else {
                req.header(
                    chorus_verify::headers::CHORUS_SIGNATURE,
                    chorus_verify::sign_body_hex(secret, &body),
                )
            };
        } else if p["signed"].as_bool() == Some(true) {
            // The hook had a secret when the rule fired and has none now
            // (deleted): an unsigned forward could be taken as genuine.
            return Err(SendError::Permanent {
                status: None,
                message: "the hook is gone; nothing signs this forward".into(),
            });
        }
        self.exchange(req.body(body), FORWARD_TIMEOUT_MS).await
    }

    /// A comment back on the source, with the hook's reply credentials.
    async fn reply(&self, delivery: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        let Some((source, reply)) = &delivery.reply else {
            return Err(SendError::Permanent {
                status: None,
                message: "the hook has no reply credentials (set reply on the hook, then retry)".into(),
            });
        };
        let p = &delivery.delivery.payload;
        let Some(base) = reply.base(*source) else {
            return Err(SendError::Permanent {
                status: None,
                message: "the hook's reply has no api_url".into(),
            });
        };
        let path = p["path"].as_str().unwrap_or_default();
        let url = format!("{base}{path}");
        check_literal(&self.guard, &url)?;
        let id = delivery.delivery.id.as_str();
        let mut req = self
            .client
            .post(&url)
            .timeout(Duration::from_millis(FORWARD_TIMEOUT_MS))
            .header("idempotency-key", id)
            .json(&p["body"]);
        for (name, value) in crate::reply::auth_headers(*source, reply) {
            req = req.header(name, value);
        }
        match self.exchange(req, FORWARD_TIMEOUT_MS).await {
            // A refused token, a missing issue or a malformed comment will
            // not improve by retrying: failed now, retried by hand once fixed.
            Err(SendError::Retryable {
                status: Some(code @ (400 | 401 | 403 | 404 | 422)), message, ..
            }) => Err(SendError::Permanent { status: Some(code), message }),
            other => other,
        }
    }

    /// Send a request and classify the answer as the engine needs it.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        timeout_ms: u64,
    ) -> Result<SendOutcome, SendError> {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(SendError::Retryable {
                    status: None,
                    message: format!("timed out after {timeout_ms} ms"),
                    retry_after: None,
                });
            }
            Err(e) => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                return Err(SendError::Retryable { status: None, message, retry_after: None });
            }
        };
        let status = response.status();
        let wait = retry_after(response.headers(), self.clock.now());
        let text = excerpt(response).await;
        let code = status.as_u16();
        if status.is_success() {
            return Ok(SendOutcome {
                status: Some(code),
                response_excerpt: text,
                message_id: None,
                thread_id: None,
            });
        }
        let message = format!(
            "HTTP {code}{}",
            text.as_deref()
                .map(|t| format!(": {}", t.chars().take(200).collect::<String>()))
                .unwrap_or_default()
        );
        Err(match status {
            StatusCode::GONE => SendError::Gone { message },
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                SendError::Retryable { status: Some(code), message, retry_after: wait }
            }
            _ => SendError::Retryable { status: Some(code), message, retry_after: None },
        })
    }
}

/// IP literals never reach the guarded resolver, so they are checked here.
fn check_literal(guard: &SsrfGuard, url: &str) -> Result<(), SendError> {
    if let Ok(url) = url::Url::parse(url) {
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(kind) = literal.and_then(|ip| guard.refuse(ip)) {
            return Err(SendError::Permanent {
                status: None,
                message: format!("destination is a {kind} address; refused by the SSRF guard"),
            });
        }
    }
    Ok(())
}

/// `Authorization: Basic` value, for tests and views.
pub fn basic_credentials(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Sends each delivery through the sink that serves its target kind.
pub struct MultiSink {
    sinks: Vec<Arc<dyn Sink>>,
}

impl MultiSink {
    /// Combine sinks; the first that serves a kind handles it.
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Self { sinks }
    }
}

#[async_trait]
impl Sink for MultiSink {
    fn kinds(&self) -> Vec<TargetKind> {
        let mut kinds: Vec<TargetKind> = self.sinks.iter().flat_map(|s| s.kinds()).collect();
        kinds.dedup();
        kinds
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        match self.serving(delivery.delivery.target.kind()) {
            Some(sink) => sink.send(delivery).await,
            None => Err(no_sink()),
        }
    }

    fn serial(&self, kind: TargetKind) -> bool {
        self.serving(kind).is_some_and(|s| s.serial(kind))
    }

    fn pack(&self, pending: &[ClaimedDelivery]) -> usize {
        let first = pending.first().map(|d| d.delivery.target.kind());
        first.and_then(|kind| self.serving(kind)).map_or(1, |s| s.pack(pending))
    }

    async fn send_packed(&self, deliveries: &[ClaimedDelivery]) -> Result<SendOutcome, SendError> {
        let first = deliveries.first().map(|d| d.delivery.target.kind());
        match first.and_then(|kind| self.serving(kind)) {
            Some(sink) => sink.send_packed(deliveries).await,
            None => Err(no_sink()),
        }
    }
}

impl MultiSink {
    fn serving(&self, kind: TargetKind) -> Option<&Arc<dyn Sink>> {
        self.sinks.iter().find(|s| s.kinds().contains(&kind))
    }
}

fn no_sink() -> SendError {
    SendError::Retryable { status: None, message: "no sink for this target".into(), retry_after: None }
}
