use std::{collections::HashMap, sync::Mutex, time::Duration};

use tokio::time::Instant;

use async_trait::async_trait;
use chorus_core::{ClaimedDelivery, Message, SendError, SendOutcome, Sink, Target, TargetKind};
use twilight_http::{Client, api_error::ApiError, error::ErrorType};
use twilight_model::id::Id;

use crate::embed::{message_payload, pack_count, packed_payload};

/// How [`DiscordSink`] reaches Discord.
#[derive(Clone, Default)]
pub struct DiscordSinkConfig {
    /// Bot token; without it channel deliveries wait in the store.
    pub token: Option<String>,
    /// `host:port` of a plain-HTTP stand-in for `discord.com`.
    pub proxy: Option<String>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for DiscordSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSinkConfig")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Delivers messages to Discord channels (bot) and Discord webhook URLs.
pub struct DiscordSink {
    bot: Option<Client>,
    webhooks: Client,
    /// Channels (and webhooks) whose rate-limit window is used up, until it
    /// resets.
    ///
    /// Discord sends `X-RateLimit-Remaining` and `-Reset-After` with every
    /// message it creates, but twilight-http only reads them from responses
    /// that carry `X-RateLimit-Scope`, which Discord sends with 429s alone:
    /// left to twilight, every window of a busy channel would end in a 429.
    exhausted: Mutex<HashMap<String, Instant>>,
    stats: std::sync::Arc<DiscordStats>,
}

/// How Discord's rate limits have held sends back, since the process
/// started, for metrics.
#[derive(Debug, Default)]
pub struct DiscordStats {
    waits: std::sync::atomic::AtomicU64,
    wait_micros: std::sync::atomic::AtomicU64,
    rate_limited: std::sync::atomic::AtomicU64,
}

impl DiscordStats {
    /// Sends that waited for a used-up window to reset, and the total wait.
    pub fn waits(&self) -> (u64, Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.waits.load(Relaxed), Duration::from_micros(self.wait_micros.load(Relaxed)))
    }

    /// Answers of 429 from Discord.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The token as the `Authorization` header wants it (`Bot …`).
fn bot_token(config: &DiscordSinkConfig) -> Option<String> {
    config
        .token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .map(|t| if t.starts_with("Bot ") || t.starts_with("Bearer ") { t } else { format!("Bot {t}") })
}

/// A twilight REST client for `config` (token, proxy, timeout), as the sink
/// uses it; for a bot's own calls. Must be built inside a tokio runtime.
pub fn rest_client(config: &DiscordSinkConfig) -> Client {
    client(bot_token(config), config)
}

fn client(token: Option<String>, config: &DiscordSinkConfig) -> Client {
    let mut b = Client::builder()
        .timeout(config.timeout.unwrap_or(Duration::from_secs(15)))
        // A 401 means the operator's token is wrong; once fixed, the waiting
        // deliveries must go out, so the client must not refuse for ever.
        .remember_invalid_token(false);
    if let Some(proxy) = &config.proxy {
        b = b.proxy(proxy.clone(), true);
    }
    if let Some(t) = token {
        b = b.token(t);
    }
    b.build()
}

impl DiscordSink {
    /// Build the clients. Must run inside a tokio runtime (twilight spawns
    /// its rate limiter there).
    pub fn new(config: &DiscordSinkConfig) -> Self {
        let token = bot_token(config);
        Self {
            bot: token.map(|t| client(Some(t), config)),
            webhooks: client(None, config),
            exhausted: Mutex::default(),
            stats: std::sync::Arc::default(),
        }
    }

    /// The sink's rate-limit counts, shared with whoever reports them.
    pub fn stats(&self) -> std::sync::Arc<DiscordStats> {
        self.stats.clone()
    }
}

/// `(webhook id, token)` of a Discord webhook URL
/// (`https://discord.com/api/webhooks/{id}/{token}`, also `discordapp.com`,
/// `ptb.` and `canary.`).
pub fn parse_webhook_url(url: &str) -> Option<(u64, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let host_ok = ["discord.com", "discordapp.com"]
        .iter()
        .any(|d| host == *d || host.strip_suffix(d).is_some_and(|sub| sub == "ptb." || sub == "canary."));
    if parsed.scheme() != "https" || !host_ok {
        return None;
    }
    let mut segs = parsed.path_segments()?.filter(|s| !s.is_empty());
    if segs.next()? != "api" {
        return None;
    }
    let mut next = segs.next()?;
    if next.starts_with('v') && next[1..].chars().all(|c| c.is_ascii_digit()) {
        next = segs.next()?;
    }
    if next != "webhooks" {
        return None;
    }
    let id: u64 = segs.next()?.parse().ok().filter(|id| *id != 0)?;
    let token = segs.next()?.to_owned();
    (!token.is_empty() && segs.next().is_none()).then_some((id, token))
}

fn classify(err: &twilight_http::Error) -> SendError {
    match err.kind() {
        ErrorType::Response { status, error, body } => {
            let code = status.get();
            let message = format!("Discord answered {code}: {}", excerpt(body));
            let retry_after = match error {
                ApiError::Ratelimited(r) => Some(Duration::from_secs_f64(r.retry_after.max(0.0))),
                _ => None,
            };
            // 400 is Discord refusing this message's content: sending it
            // again cannot help. Anything else (5xx, 429, a channel the bot
            // cannot see yet, a revoked token) is fixable or passes, so the
            // message waits instead of being dropped.
            if code == 400 || code == 413 {
                SendError::Permanent { status: Some(code), message }
            } else {
                SendError::Retryable { status: Some(code), message, retry_after }
            }
        }
        ErrorType::Unauthorized => SendError::Retryable {
            status: Some(401),
            message: "Discord refused the bot token (401)".into(),
            retry_after: None,
        },
        ErrorType::RequestTimedOut => SendError::Retryable {
            status: None,
            message: "request to Discord timed out".into(),
            retry_after: None,
        },
        ErrorType::RequestError | ErrorType::RequestCanceled | ErrorType::Parsing { .. } => {
            SendError::Retryable {
                status: None,
                message: format!("request to Discord failed: {err}"),
                retry_after: None,
            }
        }
        _ => SendError::Permanent {
            status: None,
            message: format!("could not build the Discord request: {err}"),
        },
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]);
    text.into_owned()
}

#[async_trait]
impl Sink for DiscordSink {
    fn kinds(&self) -> Vec<TargetKind> {
        let mut kinds = vec![TargetKind::DiscordWebhook];
        if self.bot.is_some() {
            kinds.push(TargetKind::DiscordChannel);
        }
        kinds
    }

    async fn send(&self, claimed: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        let mut message = parse_message(claimed)?;
        // Buttons need the application's own message; a user's Discord
        // webhook cannot carry interactive components.
        if !channel_target(claimed) {
            message.buttons.clear();
        }
        // Discord's nonce is at most 25 characters: the random part of the
        // id. Webhook executions take none.
        let nonce = channel_target(claimed)
            .then(|| claimed.delivery.id.as_str().trim_start_matches(chorus_core::DeliveryId::PREFIX));
        if message.thread.is_some() && channel_target(claimed) {
            return self.send_threaded(claimed, &message, nonce).await;
        }
        let follow = message.subject.is_some();
        if follow && let Some(message_id) = &claimed.edit {
            let body = serde_json::to_vec(&message_payload(&message, None)).expect("serializable");
            match self.post(claimed, Send::Edit(message_id), body).await {
                // Deleted by someone in the channel: the subject gets a new
                // message, which its next events then edit.
                Err(SendError::Retryable { status: Some(404), .. }) => {
                    tracing::info!(delivery = %claimed.delivery.id, "the subject's message is gone; posting a new one");
                }
                other => return other,
            }
        }
        let body = serde_json::to_vec(&message_payload(&message, nonce)).expect("serializable");
        self.post(claimed, if follow { Send::CreateForId } else { Send::Create }, body).await
    }

    fn serial(&self, kind: TargetKind) -> bool {
        matches!(kind, TargetKind::DiscordChannel | TargetKind::DiscordWebhook)
    }

    fn pack(&self, pending: &[ClaimedDelivery]) -> usize {
        let messages: Vec<Message> = pending.iter().map_while(|c| parse_message(c).ok()).collect();
        pack_count(&messages).max(1)
    }

    async fn send_packed(&self, deliveries: &[ClaimedDelivery]) -> Result<SendOutcome, SendError> {
        let (Some(first), Some(last)) = (deliveries.first(), deliveries.last()) else {
            return Err(SendError::Permanent { status: None, message: "nothing to send".into() });
        };
        let mut messages = deliveries.iter().map(parse_message).collect::<Result<Vec<_>, _>>()?;
        if !channel_target(first) {
            for m in &mut messages {
                m.buttons.clear();
            }
        }
        // The same pack sent again is deduplicated by Discord; another pack
        // (a different count or ends) is not, so no event is hidden behind
        // an earlier message that did not carry it.
        let tail = |id: &chorus_core::DeliveryId| {
            let s = id.as_str();
            s[s.len().saturating_sub(11)..].to_owned()
        };
        let nonce = format!("{:x}{}{}", deliveries.len(), tail(&first.delivery.id), tail(&last.delivery.id));
        let nonce = channel_target(first).then(|| &nonce[..nonce.len().min(25)]);
        let body = serde_json::to_vec(&packed_payload(&messages, nonce)).expect("serializable");
        self.post(first, Send::Create, body).await
    }
}

/// `Some(reset_after)` when the response says the window has no request left.
fn window_used_up<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Option<Duration> {
    let (mut remaining, mut reset_after) = (None, None);
    for (name, value) in headers {
        let value = std::str::from_utf8(value).ok();
        if name.eq_ignore_ascii_case("x-ratelimit-remaining") {
            remaining = value.and_then(|v| v.parse::<u32>().ok());
        } else if name.eq_ignore_ascii_case("x-ratelimit-reset-after") {
            reset_after = value.and_then(|v| v.parse::<f64>().ok());
        }
    }
    // Capped: a bogus header must not stall a channel for long.
    (remaining == Some(0)).then(|| Duration::from_secs_f64(reset_after.unwrap_or(1.0).clamp(0.0, 60.0)))
}

fn channel_target(claimed: &ClaimedDelivery) -> bool {
    matches!(claimed.delivery.target, Target::DiscordChannel { .. })
}

fn parse_message(claimed: &ClaimedDelivery) -> Result<Message, SendError> {
    serde_json::from_value(claimed.delivery.payload.clone()).map_err(|e| SendError::Permanent {
        status: None,
        message: format!("stored payload is not a message: {e}"),
    })
}

/// What one request to Discord does with a message body.
#[derive(Clone, Copy)]
enum Send<'a> {
    /// Post a new message.
    Create,
    /// Post a new message and read back its id.
    CreateForId,
    /// Post a new message in this thread of the target channel.
    InThread(&'a str),
    /// Replace the message with this id.
    Edit(&'a str),
}

impl DiscordSink {
    /// Send a message body to `claimed`'s target, first waiting out its
    /// rate-limit window if the last response said it was used up.
    async fn post(
        &self,
        claimed: &ClaimedDelivery,
        how: Send<'_>,
        body: Vec<u8>,
    ) -> Result<SendOutcome, SendError> {
        let key = match &claimed.delivery.target {
            Target::DiscordChannel { channel_id } => channel_id.clone(),
            Target::DiscordWebhook { agent } => format!("webhook:{agent}"),
            Target::Http { .. } | Target::Forward { .. } | Target::Reply { .. } => String::new(),
        };
        let until = self.exhausted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        if let Some(until) = until {
            use std::sync::atomic::Ordering::Relaxed;
            let wait = until.saturating_duration_since(Instant::now());
            self.stats.waits.fetch_add(1, Relaxed);
            self.stats.wait_micros.fetch_add(wait.as_micros() as u64, Relaxed);
            tokio::time::sleep_until(until).await;
        }
        let sent = self.post_now(claimed, how, body).await;
        if let Err(SendError::Retryable { status: Some(429), .. }) = &sent {
            self.stats.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let (outcome, reset) = sent?;
        if let Some(after) = reset {
            let mut exhausted = self.exhausted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            exhausted.insert(key, Instant::now() + after);
        }
        Ok(outcome)
    }

    /// Send now; with the outcome, how long until the window resets if the
    /// response said none is left.
    async fn post_now(
        &self,
        claimed: &ClaimedDelivery,
        how: Send<'_>,
        body: Vec<u8>,
    ) -> Result<(SendOutcome, Option<Duration>), SendError> {
        let response = match &claimed.delivery.target {
            Target::DiscordChannel { channel_id } => {
                let Some(bot) = &self.bot else {
                    return Err(SendError::Retryable {
                        status: None,
                        message: "no Discord bot token configured".into(),
                        retry_after: None,
                    });
                };
                let channel = channel_id.parse::<u64>().ok().and_then(Id::new_checked).ok_or_else(|| {
                    SendError::Permanent {
                        status: None,
                        message: format!("invalid channel id {channel_id:?}"),
                    }
                })?;
                match how {
                    Send::Edit(message) => {
                        let message = message_id(message)?;
                        bot.update_message(channel, message).payload_json(&body).await.map(Sent::Message)
                    }
                    Send::InThread(thread) => {
                        let thread = thread_channel(thread)?;
                        bot.create_message(thread).payload_json(&body).await.map(Sent::Message)
                    }
                    Send::Create | Send::CreateForId => {
                        bot.create_message(channel).payload_json(&body).await.map(Sent::Message)
                    }
                }
            }
            Target::DiscordWebhook { agent } => {
                let url = claimed.webhook_url.as_ref().ok_or_else(|| SendError::Retryable {
                    status: None,
                    message: format!("agent {agent} has no Discord webhook URL"),
                    retry_after: None,
                })?;
                let (id, token) = parse_webhook_url(url.expose()).ok_or_else(|| SendError::Permanent {
                    status: None,
                    message: format!("agent {agent} has an invalid Discord webhook URL"),
                })?;
                let id = Id::new_checked(id).expect("parse_webhook_url refuses 0");
                match how {
                    Send::Edit(message) => {
                        let message = message_id(message)?;
                        self.webhooks
                            .update_webhook_message(id, &token, message)
                            .payload_json(&body)
                            .await
                            .map(Sent::Message)
                    }
                    // Discord answers an execution with the message only
                    // when asked to wait for it.
                    Send::CreateForId => self
                        .webhooks
                        .execute_webhook(id, &token)
                        .payload_json(&body)
                        .wait()
                        .await
                        .map(Sent::Message),
                    Send::Create | Send::InThread(_) => {
                        self.webhooks.execute_webhook(id, &token).payload_json(&body).await.map(Sent::Nothing)
                    }
                }
            }
            Target::Http { .. } | Target::Forward { .. } | Target::Reply { .. } => {
                return Err(SendError::Permanent { status: None, message: "not a Discord target".into() });
            }
        }
        .map_err(|e| webhook_refused(classify(&e), &claimed.delivery.target, how))?;
        let (status, reset) = match &response {
            Sent::Message(r) => (r.status().get(), window_used_up(r.headers())),
            Sent::Nothing(r) => (r.status().get(), window_used_up(r.headers())),
        };
        let message_id = match (how, response) {
            (Send::Create | Send::InThread(_), _) | (_, Sent::Nothing(_)) => None,
            // Only the id is read, so a message shape twilight does not know
            // yet costs nothing; a body without one costs the next edit (a
            // new message instead), never this send.
            (Send::CreateForId | Send::Edit(_), Sent::Message(r)) => r.bytes().await.ok().and_then(|b| {
                let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                v.get("id")?.as_str().map(str::to_owned)
            }),
        };
        Ok((SendOutcome { status: Some(status), response_excerpt: None, message_id, thread_id: None }, reset))
    }
}

impl DiscordSink {
    /// A message about a pull request or incident: into its thread, or, the
    /// first time (or when the thread is gone), in the channel with a new
    /// thread started from it.
    async fn send_threaded(
        &self,
        claimed: &ClaimedDelivery,
        message: &Message,
        nonce: Option<&str>,
    ) -> Result<SendOutcome, SendError> {
        let body = serde_json::to_vec(&message_payload(message, nonce)).expect("serializable");
        if let Some(thread) = &claimed.thread {
            match self.post(claimed, Send::InThread(thread), body.clone()).await {
                // Deleted: the next message starts a new one.
                Err(SendError::Retryable { status: Some(404), .. }) => {
                    tracing::info!(delivery = %claimed.delivery.id, "the subject's thread is gone; starting a new one");
                }
                other => return other,
            }
        }
        let mut outcome = self.post(claimed, Send::CreateForId, body).await?;
        if let (Some(bot), Target::DiscordChannel { channel_id: channel }, Some(posted)) =
            (&self.bot, &claimed.delivery.target, &outcome.message_id)
        {
            // Sent already: a thread that cannot be started costs the
            // thread (the next message tries again), not this message.
            let name = thread_name(&message.title);
            let started = match (thread_channel(channel), message_id(posted)) {
                (Ok(c), Ok(m)) => bot.create_thread_from_message(c, m, &name).await.ok(),
                _ => None,
            };
            match started {
                Some(response) => {
                    outcome.thread_id = response.bytes().await.ok().and_then(|b| {
                        let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                        v.get("id")?.as_str().map(str::to_owned)
                    });
                }
                None => {
                    tracing::warn!(delivery = %claimed.delivery.id, "could not start a thread for the message");
                }
            }
        }
        Ok(outcome)
    }
}

/// A thread name as Discord takes it: 1 to 100 characters.
fn thread_name(title: &str) -> String {
    let name: String = title.trim().chars().take(100).collect();
    if name.is_empty() { "Updates".to_owned() } else { name }
}

/// A response from Discord: with a message, or with nothing to read.
enum Sent {
    Message(twilight_http::Response<twilight_model::channel::Message>),
    Nothing(twilight_http::Response<twilight_http::response::marker::EmptyBody>),
}

/// A Discord webhook that answers 401 or 404 to a send was deleted or its
/// token revoked, and a bot token answered 401 is wrong or reset: only a
/// new URL or token helps, and each further try spends the invalid-request
/// budget that gets an address banned. (A 404 to an edit is the message's,
/// which the caller replaces with a new one.)
fn webhook_refused(err: SendError, target: &Target, how: Send<'_>) -> SendError {
    match (err, target, how) {
        (SendError::Retryable { status: Some(401), .. }, Target::DiscordChannel { .. }, _) => {
            SendError::Broken {
                status: Some(401),
                message: "Discord refused the bot token (401): channel messages wait until it is replaced"
                    .into(),
            }
        }
        (
            SendError::Retryable { status: Some(status @ (401 | 404)), .. },
            Target::DiscordWebhook { agent },
            Send::Create | Send::CreateForId | Send::InThread(_),
        ) => SendError::Broken {
            status: Some(status),
            message: format!(
                "Discord answered {status} to agent {agent}'s webhook URL: it was deleted or its token is wrong; \
                 its messages wait until the URL is replaced"
            ),
        },
        (err, ..) => err,
    }
}

fn thread_channel(id: &str) -> Result<Id<twilight_model::id::marker::ChannelMarker>, SendError> {
    id.parse::<u64>().ok().and_then(Id::new_checked).ok_or_else(|| SendError::Permanent {
        status: None,
        message: format!("channel id {id:?} is not a Discord id"),
    })
}

fn message_id(id: &str) -> Result<Id<twilight_model::id::marker::MessageMarker>, SendError> {
    id.parse::<u64>().ok().and_then(Id::new_checked).ok_or_else(|| SendError::Permanent {
        status: None,
        message: format!("stored message id {id:?} is not a Discord id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert_eq!(
            parse_webhook_url("https://discord.com/api/webhooks/123/abc-DEF_g"),
            Some((123, "abc-DEF_g".into()))
        );
        assert_eq!(
            parse_webhook_url("https://canary.discord.com/api/v10/webhooks/9/t"),
            Some((9, "t".into()))
        );
        assert_eq!(parse_webhook_url("https://discordapp.com/api/webhooks/1/t"), Some((1, "t".into())));
        for bad in [
            "http://discord.com/api/webhooks/1/t",
            "https://evil.com/api/webhooks/1/t",
            "https://evildiscord.com/api/webhooks/1/t",
            "https://discord.com/api/webhooks/0/t",
            "https://discord.com/api/webhooks/x/t",
            "https://discord.com/api/webhooks/1",
            "https://discord.com/api/webhooks/1/t/extra",
        ] {
            assert_eq!(parse_webhook_url(bad), None, "{bad}");
        }
    }
}
