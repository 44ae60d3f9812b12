//! Each provider's event type, delivery id, formatter and rule variables
//! over arbitrary JSON: a message, never a panic. And ingress's one-pass
//! view of a body: it refuses what a whole parse refuses and reads the same
//! event type, delivery id and handshake from what it accepts.
#![no_main]

use arbitrary::Arbitrary;
use chorus_core::Source;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    source: u8,
    event_header: String,
    event_type: String,
    json: String,
}

fuzz_target!(|input: Input| {
    let source = Source::ALL[usize::from(input.source) % Source::ALL.len()];
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&input.event_header) {
        for name in
            ["x-github-event", "x-gitlab-event", "x-event-key", "x-gitea-event", "sentry-hook-resource"]
        {
            headers.insert(name, value.clone());
        }
    }
    let provider = chorus_providers::of(source);
    let payload = match serde_json::from_str::<serde_json::Value>(&input.json) {
        Ok(payload) => payload,
        Err(e) => {
            for other in Source::ALL {
                let view = chorus_providers::ingress_view(other, input.json.as_bytes());
                assert!(view.is_err(), "{other}'s view took what a whole parse refuses: {e}");
            }
            return;
        }
    };
    // Every source's view, not just the one drawn: a field a descriptor
    // reads but does not list shows up on any payload that has it.
    for other in Source::ALL {
        let p = chorus_providers::of(other);
        let view = chorus_providers::ingress_view(other, input.json.as_bytes())
            .expect("the view takes what a whole parse takes");
        let said = |v: &serde_json::Value| {
            (
                chorus_providers::event_type(other, &headers, v),
                p.delivery_key(&headers, Some(v)),
                p.challenge(v),
            )
        };
        assert_eq!(said(&view), said(&payload), "{other}");
    }
    let detected = chorus_providers::event_type(source, &headers, &payload);
    let _ = provider.delivery_key(&headers, Some(&payload));
    let _ = provider.challenge(&payload);
    for event_type in [detected.as_str(), input.event_type.as_str()] {
        let message = chorus_providers::format_payload(source, &headers, event_type, &payload);
        let _ = message.title.len() + message.description.len();
        let _ = chorus_format::format(source, event_type, &payload);
        let _ = chorus_rules::context(source, event_type, &payload, &chorus_rules::SubjectState::default());
    }
});
