//! Every provider's real payloads with their text replaced by random
//! strings of any length and script: the shape each formatter reads stays,
//! the values are ones no fixture has. Whatever a formatter makes of them,
//! the embed must be one Discord accepts.

use proptest::prelude::*;
use serde_json::Value;

/// The fixture's string leaves replaced by text drawn from `seed`.
fn scramble(v: &Value, seed: &mut u64) -> Value {
    match v {
        Value::String(_) => {
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let len = (*seed >> 33) % 3000;
            let text: String = (0..len)
                .map(|i| {
                    let pick = (seed.wrapping_add(i).wrapping_mul(2_654_435_761) >> 7) % 6;
                    ['a', 'é', '😀', '[', '\n', 'Ж'][pick as usize]
                })
                .collect();
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| scramble(i, seed)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, i)| (k.clone(), scramble(i, seed))).collect())
        }
        other => other.clone(),
    }
}

/// A fixture's name, its body and the headers its sender adds.
type Fixture = (String, Value, Vec<(String, String)>);

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for group in ["github", "gitlab", "other"] {
        for path in chorus_testkit::fixture_files(group) {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let body: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let headers = match group {
                "github" => vec![("x-github-event".into(), name.split('.').next().unwrap().to_owned())],
                "gitlab" => vec![("x-gitlab-event".into(), "Push Hook".into())],
                _ => vec![],
            };
            out.push((name, body, headers));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn scrambled_fixtures_of_every_provider_render_valid_embeds(seed in any::<u64>()) {
        for (name, body, headers) in fixtures() {
            let mut s = seed;
            let body = scramble(&body, &mut s);
            let headers = chorus_providers::header_map(&headers);
            let event_type = chorus_providers::event_type(chorus_core::Source::Generic, &headers, &body);
            let message = chorus_providers::format_payload(chorus_core::Source::Generic, &headers, &event_type, &body);
            let embed = chorus_discord::to_embed(&message);
            prop_assert!(twilight_validate::embed::embed(&embed).is_ok(), "{name}: {embed:?}");
        }
    }
}
