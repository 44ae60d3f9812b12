use std::fs;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn headers_from(pairs: impl IntoIterator<Item = (String, String)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    map
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// The timestamp a vector was signed at, so the verifier's clock can be pinned to it.
fn vector_time(v: &Value) -> i64 {
    let h = &v["headers"];
    for key in ["webhook-timestamp", "X-Slack-Request-Timestamp"] {
        if let Some(ts) = h[key].as_str() {
            return ts.parse().unwrap();
        }
    }
    if let Some(sig) = h["Stripe-Signature"].as_str() {
        return parse_stripe_header(sig).unwrap().t;
    }
    1_700_000_000
}

fn source_of(scheme: &str) -> Source {
    let head = scheme.split_whitespace().next().unwrap();
    match head {
        "github" => Source::Github,
        "standard-webhooks" => Source::Standard,
        "slack" => Source::Slack,
        "stripe" => Source::Stripe,
        other => panic!("vector scheme {other} has no source"),
    }
}

#[test]
fn shared_signature_vectors() {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let mut checked = 0;
    for entry in fs::read_dir(dir.join("vectors")).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let (Some(secret), Some(body)) = (v["secret"].as_str(), v["body"].as_str()) else {
            continue; // header-parse-only vectors are checked below
        };
        let source = source_of(v["scheme"].as_str().unwrap());
        let headers = headers_from(
            v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())),
        );
        let now = at(vector_time(&v));
        let result = verify(source, None, &[Secret::new(secret)], &headers, body.as_bytes(), now);
        let expected = v["expected_valid"].as_bool().unwrap();
        assert_eq!(result.is_ok(), expected, "{}: {result:?}", path.display());
        if expected && matches!(source, Source::Stripe | Source::Slack | Source::Standard) {
            let stale = verify(
                source,
                None,
                &[Secret::new(secret)],
                &headers,
                body.as_bytes(),
                at(vector_time(&v) + 400),
            );
            assert_eq!(stale, Err(VerifyError::TimestampOutOfTolerance), "{}", path.display());
        }
        // Our signer must reproduce every correct signature.
        if let Some(exp) = v["expected"].as_str() {
            let ours = match source {
                Source::Github => sign_body_hex(&Secret::new(secret), body.as_bytes()),
                Source::Standard => sign_standard(
                    &Secret::new(secret),
                    v["headers"]["webhook-id"].as_str().unwrap(),
                    vector_time(&v),
                    body.as_bytes(),
                )
                .unwrap(),
                Source::Slack => {
                    sign(source, None, &Secret::new(secret), body.as_bytes(), now, "")[1].1.clone()
                }
                Source::Stripe => {
                    let h = &sign(source, None, &Secret::new(secret), body.as_bytes(), now, "")[0].1;
                    parse_stripe_header(h).unwrap().v1[0].clone()
                }
                _ => unreachable!(),
            };
            if v["expected_valid"] == Value::Bool(true)
                || v["notes"].as_str().unwrap_or("").contains("would produce")
            {
                assert_eq!(ours, exp, "{}", path.display());
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors checked");
}

#[test]
fn stripe_header_parse_vector() {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let v: Value =
        serde_json::from_slice(&fs::read(dir.join("vectors/stripe.header-parse-only.json")).unwrap())
            .unwrap();
    let parsed = parse_stripe_header(v["headers"]["Stripe-Signature"].as_str().unwrap()).unwrap();
    assert_eq!(parsed.t, v["expected"]["t"].as_i64().unwrap());
    assert_eq!(parsed.v1, vec![v["expected"]["v1"][0].as_str().unwrap().to_owned()]);
    assert_eq!(parsed.v0, vec![v["expected"]["v0"][0].as_str().unwrap().to_owned()]);
}

#[test]
fn missing_headers_are_401_class() {
    let empty = HeaderMap::new();
    for source in Source::ALL.into_iter().filter(|s| s.has_secret()) {
        let err = verify(source, None, &[Secret::new("s")], &empty, b"{}", at(1_700_000_000)).unwrap_err();
        assert!(err.is_missing(), "{source}: {err:?}");
    }
}

#[test]
fn none_accepts_anything() {
    assert!(verify(Source::None, None, &[], &HeaderMap::new(), b"x", at(0)).is_ok());
}

#[test]
fn rotation_both_secrets_verify() {
    let old = Secret::new("old");
    let new = Secret::new("new");
    let now = at(1_700_000_000);
    for source in Source::ALL.into_iter().filter(|s| s.has_secret() && *s != Source::Standard) {
        let h = headers_from(sign(source, None, &old, b"{\"a\":1}", now, "m"));
        assert!(verify(source, None, &[new.clone(), old.clone()], &h, b"{\"a\":1}", now).is_ok(), "{source}");
        assert!(verify(source, None, std::slice::from_ref(&new), &h, b"{\"a\":1}", now).is_err(), "{source}");
    }
}

#[test]
fn generic_base64_with_custom_header_and_prefix() {
    let scheme = GenericScheme {
        header: "X-Acme-Sig".into(),
        encoding: SignatureEncoding::Base64,
        prefix: Some("hmac ".into()),
    };
    let s = Secret::new("k");
    let now = at(0);
    let h = headers_from(sign(Source::Generic, Some(&scheme), &s, b"body", now, ""));
    assert!(h.get("x-acme-sig").unwrap().to_str().unwrap().starts_with("hmac "));
    assert!(verify(Source::Generic, Some(&scheme), std::slice::from_ref(&s), &h, b"body", now).is_ok());
    assert_eq!(
        verify(Source::Generic, Some(&scheme), &[s], &h, b"bodz", now),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn gitlab_token_must_match_exactly() {
    let s = Secret::new("tok");
    let ok = headers_from([("X-Gitlab-Token".to_owned(), "tok".to_owned())]);
    let bad = headers_from([("X-Gitlab-Token".to_owned(), "tok2".to_owned())]);
    assert!(verify(Source::Gitlab, None, std::slice::from_ref(&s), &ok, b"{}", at(0)).is_ok());
    assert_eq!(verify(Source::Gitlab, None, &[s], &bad, b"{}", at(0)), Err(VerifyError::InvalidSignature));
}

#[test]
fn future_timestamps_are_rejected_too() {
    let s = Secret::generate_standard();
    let h = headers_from(sign(Source::Standard, None, &s, b"{}", at(2_000), "msg"));
    assert!(verify(Source::Standard, None, std::slice::from_ref(&s), &h, b"{}", at(2_000 - 299)).is_ok());
    assert_eq!(
        verify(Source::Standard, None, &[s], &h, b"{}", at(2_000 - 301)),
        Err(VerifyError::TimestampOutOfTolerance)
    );
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(body in proptest::collection::vec(any::<u8>(), 0..512), secs in 1_000_000i64..4_000_000_000) {
        let now = at(secs);
        for source in Source::ALL {
            let secret = if source == Source::Standard { Secret::generate_standard() } else { Secret::generate() };
            let h = headers_from(sign(source, None, &secret, &body, now, "msg_x"));
            prop_assert!(verify(source, None, std::slice::from_ref(&secret), &h, &body, now).is_ok());
            if source.has_secret() && source != Source::Gitlab {
                let mut tampered = body.clone();
                tampered.push(b'!');
                prop_assert_eq!(verify(source, None, &[secret], &h, &tampered, now), Err(VerifyError::InvalidSignature));
            }
        }
    }
}
