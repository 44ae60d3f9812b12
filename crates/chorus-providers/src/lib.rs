#![doc = include_str!("../README.md")]

mod bitbucket;
mod chorus;
mod circleci;
mod detect;
mod docker;
mod gitea;
mod github;
mod gitlab;
mod jira;
mod sentry;
mod slack;
mod standard;
mod stripe;
mod view;

pub use detect::{Detected, detect};
pub use view::ingress_view;

use chorus_core::{Message, Source};
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::Value;

/// Everything Chorus knows about one kind of sender, beside verification
/// (which chorus-verify does per [`Source`]).
pub trait Provider: Send + Sync + 'static {
    /// The source this describes.
    fn source(&self) -> Source;

    /// The event type of a request (`push`, `issues.opened`,
    /// `jira:issue_created`, …) from its headers and parsed body.
    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String;

    /// The sender's own id for this delivery, for deduplication.
    fn delivery_key(&self, headers: &HeaderMap, body: Option<&Value>) -> Option<String>;

    /// The top-level body fields that [`event_type`](Self::event_type),
    /// [`delivery_key`](Self::delivery_key) and
    /// [`challenge`](Self::challenge) read, so that ingress can skip the
    /// rest of the payload ([`ingress_view`]); `None` reads it whole.
    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// The event families this sender names (`push`, `issues`, …), for
    /// refusing rule triggers that can never match; `None` where the sender
    /// names its own events.
    fn event_families(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// A handshake to answer instead of storing (Slack's `url_verification`).
    fn challenge(&self, _body: &Value) -> Option<String> {
        None
    }

    /// A realistic payload this sender would post, with the headers it would
    /// attach (signature excepted), carrying `note` where a person reads it.
    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>);

    /// Where to paste a new hook's URL and secret at the sender, when the
    /// sender has settings a person must find.
    fn setup(&self) -> Option<&'static str> {
        None
    }

    /// A payload as a readable message.
    fn format(&self, event_type: &str, payload: &Value) -> Message {
        chorus_format::format(self.source(), event_type, payload)
    }
}

/// Whether hooks of `source` leave the sender unsaid, so that payloads are
/// recognised by [`detect`].
pub fn detects(source: Source) -> bool {
    matches!(source, Source::Generic | Source::None)
}

/// The event type of a request to a hook of `source`: what the source's
/// descriptor reads, or for a hook that does not say who sends, what the
/// recognised sender names it.
pub fn event_type(source: Source, headers: &HeaderMap, body: &Value) -> String {
    if detects(source)
        && let Some(d) = detect(headers, body)
    {
        return d.event_type;
    }
    of(source).event_type(headers, body)
}

/// A payload to a hook of `source` as a message: by the source's formatter,
/// or for a hook that does not say who sends, by the formatter of the
/// sender it is recognised as (else the generic summary).
pub fn format_payload(source: Source, headers: &HeaderMap, event_type: &str, payload: &Value) -> Message {
    if detects(source)
        && let Some(m) = detect(headers, payload)
            .and_then(|d| chorus_format::format_service(d.service, event_type, payload))
    {
        return m;
    }
    of(source).format(event_type, payload)
}

/// Stored `(name, value)` header pairs as a `HeaderMap` (pairs that are not
/// valid headers are left out).
pub fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::try_from(k.as_str()), http::HeaderValue::try_from(v.as_str()))
        {
            map.append(name, value);
        }
    }
    map
}

/// The descriptor of `source`.
pub fn of(source: Source) -> &'static dyn Provider {
    match source {
        Source::Github => &github::Github,
        Source::Gitlab => &gitlab::Gitlab,
        Source::Jira => &jira::Jira,
        Source::Sentry => &sentry::Sentry,
        Source::Circleci => &circleci::Circleci,
        Source::Bitbucket => &bitbucket::Bitbucket,
        Source::Gitea => &gitea::Gitea,
        Source::Docker => &docker::Docker,
        Source::Slack => &slack::Slack,
        Source::Stripe => &stripe::Stripe,
        Source::Standard => &standard::Standard,
        Source::Chorus => &chorus::CHORUS,
        Source::Generic => &chorus::GENERIC,
        Source::None => &chorus::NONE,
    }
}

/// A header as text, looked up by its lowercase name.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A delivery key as Chorus keeps it: present, at most 200 characters.
pub(crate) fn key(value: Option<String>) -> Option<String> {
    value.filter(|k| !k.is_empty() && k.len() <= 200)
}

/// A top-level string field of a body.
pub(crate) fn field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each descriptor reads back what its own sample carries: the event
    /// type its sender would name, and the delivery id for deduplication.
    #[test]
    fn every_source_has_a_descriptor_that_reads_its_own_sample() {
        for source in Source::ALL {
            let p = of(source);
            assert_eq!(p.source(), source);
            let (body, pairs) = p.sample("delivery-1", Timestamp::UNIX_EPOCH, "a note");
            let mut headers = HeaderMap::new();
            for (k, v) in &pairs {
                headers.insert(http::HeaderName::try_from(k.as_str()).unwrap(), v.parse().unwrap());
            }
            let event_type = p.event_type(&headers, &body);
            assert!(
                !["unknown", "webhook", "slack", "jira"].contains(&event_type.as_str()),
                "{source}: {event_type}"
            );
            let key = p.delivery_key(&headers, Some(&body)).unwrap_or_default();
            // Docker names no delivery: its key is made of time, object and action.
            if source == Source::Docker {
                assert_eq!(key, "0:delivery-1:die");
            } else {
                assert_eq!(key, "delivery-1", "{source}");
            }
            assert!(p.challenge(&body).is_none(), "{source}");
            let shown = serde_json::to_string(&p.format(&event_type, &body)).unwrap();
            assert!(shown.contains("a note"), "{source}: the note is shown in {shown}");
        }
        let challenge = serde_json::json!({"type": "url_verification", "challenge": "c-1"});
        assert_eq!(of(Source::Slack).challenge(&challenge).as_deref(), Some("c-1"));
    }
}
