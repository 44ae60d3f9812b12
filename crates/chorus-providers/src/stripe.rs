//! Stripe: the event's `type` and `id`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, chorus::named_event, field, key};

pub(crate) struct Stripe;

impl Provider for Stripe {
    fn source(&self) -> Source {
        Source::Stripe
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        named_event(headers, body)
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["id", "type", "event", "event_type", "webhookEvent"])
    }

    fn delivery_key(&self, _headers: &HeaderMap, body: Option<&Value>) -> Option<String> {
        key(body.and_then(|b| field(b, "id")))
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "id": delivery,
            "object": "event",
            "type": "chorus.test",
            "created": now.as_second(),
            "livemode": false,
            "data": {"object": {"description": note}},
        });
        (body, Vec::new())
    }
}
