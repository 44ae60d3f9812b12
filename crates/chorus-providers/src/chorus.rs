//! Senders of plain JSON: Chorus-signed, generic HMAC, or unverified. The
//! sender names the event (`X-Chorus-Event`, or the body's `type`, `event`,
//! `event_type`, `webhookEvent`).

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, header, key};

/// One descriptor for the three plain-JSON sources.
pub(crate) struct Plain(Source);

pub(crate) static CHORUS: Plain = Plain(Source::Chorus);
pub(crate) static GENERIC: Plain = Plain(Source::Generic);
pub(crate) static NONE: Plain = Plain(Source::None);

/// The event a JSON sender names, else `webhook`.
pub(crate) fn named_event(headers: &HeaderMap, body: &Value) -> String {
    header(headers, "x-chorus-event")
        .map(str::to_owned)
        .or_else(|| field(body, "type"))
        .or_else(|| field(body, "event"))
        .or_else(|| field(body, "event_type"))
        .or_else(|| field(body, "webhookEvent"))
        .unwrap_or_else(|| "webhook".into())
}

impl Provider for Plain {
    fn source(&self) -> Source {
        self.0
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        named_event(headers, body)
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["type", "event", "event_type", "webhookEvent"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-chorus-delivery")
            .or_else(|| header(headers, "idempotency-key"))
            .or_else(|| header(headers, "webhook-id"))
            .map(str::to_owned))
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({"type": "chorus.test", "message": note, "timestamp": now.to_string()});
        (body, vec![("x-chorus-delivery".into(), delivery.into())])
    }
}
