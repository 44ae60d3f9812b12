//! Standard Webhooks senders: the body names the event, `webhook-id` the
//! delivery.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::Value;

use crate::{Provider, chorus, header, key};

pub(crate) struct Standard;

impl Provider for Standard {
    fn source(&self) -> Source {
        Source::Standard
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        chorus::named_event(headers, body)
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["type", "event", "event_type", "webhookEvent"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "webhook-id").map(str::to_owned))
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let (body, _) = chorus::CHORUS.sample(delivery, now, note);
        (body, vec![("webhook-id".into(), delivery.into())])
    }
}
