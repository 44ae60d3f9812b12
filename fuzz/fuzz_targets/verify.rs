//! Every signature scheme against arbitrary headers and bodies: an answer
//! (verified or a reason), never a panic.
#![no_main]

use arbitrary::Arbitrary;
use chorus_core::{GenericScheme, Secret, SignatureEncoding, Source};
use chorus_verify::headers as h;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Header names any scheme reads.
const NAMES: [&str; 21] = [
    h::CHORUS_SIGNATURE,
    h::GITHUB_SIGNATURE,
    h::GITLAB_TOKEN,
    h::STANDARD_ID,
    h::STANDARD_TIMESTAMP,
    h::STANDARD_SIGNATURE,
    h::SVIX_ID,
    h::SVIX_TIMESTAMP,
    h::SVIX_SIGNATURE,
    h::SLACK_TIMESTAMP,
    h::SLACK_SIGNATURE,
    h::STRIPE_SIGNATURE,
    h::JIRA_SIGNATURE,
    h::SENTRY_SIGNATURE,
    h::CIRCLECI_SIGNATURE,
    h::GITEA_SIGNATURE,
    h::FORGEJO_SIGNATURE,
    "x-signature",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "authorization",
];

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(u8, String)>,
    body: Vec<u8>,
    secret: String,
    prefix: Option<String>,
    base64: bool,
    now: i64,
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(name, value);
        }
    }
    let now = jiff::Timestamp::from_second(input.now.rem_euclid(4_000_000_000))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let secrets = [Secret::new(input.secret.clone()), Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let generic = GenericScheme {
        header: "X-Signature".into(),
        encoding: if input.base64 { SignatureEncoding::Base64 } else { SignatureEncoding::Hex },
        prefix: input.prefix.clone(),
    };
    for source in Source::ALL {
        let scheme = (source == Source::Generic).then_some(&generic);
        let _ = chorus_verify::verify(source, scheme, &secrets, &headers, &input.body, now);
    }
    let key = chorus_verify::DiscordKey::from_hex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    );
    if let Ok(key) = key {
        let _ = key.verify(&headers, &input.body, now);
    }
});
