//! Rule templates, `if` expressions and conditions over arbitrary events:
//! a verdict or an error, never a panic, and templates stop at their fuel.
#![no_main]

use arbitrary::Arbitrary;
use chorus_core::{Action, Rule, SignatureScheme, Source};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    trigger: String,
    event_type: String,
    template: String,
    conditions: String,
    payload: String,
    source: u8,
}

fuzz_target!(|input: Input| {
    let source = Source::ALL[usize::from(input.source) % Source::ALL.len()];
    let payload = serde_json::from_str(&input.payload).unwrap_or(serde_json::Value::Null);
    let ctx =
        chorus_rules::context(source, &input.event_type, &payload, &chorus_rules::SubjectState::default());
    let _ = chorus_rules::check_template(&input.template);
    let _ = chorus_rules::render(&input.template, &ctx);
    let conditions = match serde_json::from_str::<serde_json::Value>(&input.conditions) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let rule = Rule {
        id: "cmd_fuzz".into(),
        hook_id: "hk_fuzzfuzzfuzz".parse().expect("a valid id"),
        trigger: input.trigger.clone(),
        action: Action::Notify,
        agent: None,
        template: Some(input.template.clone()),
        conditions,
        url: None,
        priority: 0,
        stop: false,
        reply: false,
        signature: SignatureScheme::default(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
    };
    let _ = chorus_rules::check(&rule, source);
    let _ = chorus_rules::evaluate(std::slice::from_ref(&rule), &input.event_type, &ctx);
    let _ = chorus_workflow::render(&serde_json::Value::String(input.template.clone()), &payload);
});
