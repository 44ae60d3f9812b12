//! Each provider's event type, delivery id, formatter and rule variables
//! over arbitrary JSON: a message, never a panic.
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
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(&input.json) else { return };
    let source = Source::ALL[usize::from(input.source) % Source::ALL.len()];
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&input.event_header) {
        for name in
            ["x-github-event", "x-gitlab-event", "x-event-key", "x-gitea-event", "sentry-hook-resource"]
        {
            headers.insert(name, value.clone());
        }
    }
    let detected = chorus_providers::event_type(source, &headers, &payload);
    let provider = chorus_providers::of(source);
    let _ = provider.delivery_key(&headers, Some(&payload));
    let _ = provider.challenge(&payload);
    for event_type in [detected.as_str(), input.event_type.as_str()] {
        let message = chorus_providers::format_payload(source, &headers, event_type, &payload);
        let _ = message.title.len() + message.description.len();
        let _ = chorus_format::format(source, event_type, &payload);
        let _ = chorus_rules::context(source, event_type, &payload, &chorus_rules::SubjectState::default());
    }
});
