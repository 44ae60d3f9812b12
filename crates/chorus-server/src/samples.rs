//! Test sends of incoming hooks: a realistic payload for the hook's source,
//! with the headers its sender would attach, signed with the hook's secret.

use chorus_core::{IncomingHook, Secret};
use jiff::Timestamp;

/// The body and headers a sender of `hook`'s source would post.
pub(crate) fn signed(
    hook: &IncomingHook,
    secret: Option<&Secret>,
    now: Timestamp,
) -> (Vec<u8>, Vec<(String, String)>) {
    let delivery = chorus_core::random_token("chorus-test-", 12);
    let note =
        format!("Test event from Chorus for hook \"{}\": if you read this, the hook works.", hook.name);
    let (body, mut headers) = chorus_providers::of(hook.source).sample(&delivery, now, &note);
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("user-agent".into(), concat!("Chorus-Test/", env!("CARGO_PKG_VERSION")).into()));
    if let Some(secret) = secret {
        headers.extend(chorus_verify::sign(
            hook.source,
            hook.generic.as_ref(),
            secret,
            &body,
            now,
            &delivery,
        ));
    }
    (body, headers)
}
